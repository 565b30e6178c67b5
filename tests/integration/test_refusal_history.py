"""Changes the API refuses for an existing order are in that order's history, with who sent
them; refusals about orders a caller may not see are not written anywhere."""

from __future__ import annotations

from models.api_keys import Role
from tests.integration.helpers import order_body, place, wait_status


async def _refused(stack, oid: str) -> list[dict]:
    view = (await stack.api.get(f"/orders/{oid}")).json()
    return [h for h in view["history"] if h["kind"] == "request_refused"]


async def test_refusals_made_by_the_api_join_the_history(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    oid = (await place(stack.api, order_body()))["order_id"]
    await wait_status(stack.api, oid, "CONFIRMED")

    r = await stack.api.patch(f"/orders/{oid}", json={})
    assert r.status_code == 422 and r.json()["error"]["code"] == "nothing_to_change"
    r = await stack.api.patch(f"/orders/{oid}", json={"lines": [{"sku": "X", "quantity": -2}]})
    assert r.status_code == 422
    r = await stack.api.post(f"/orders/{oid}/payments", json={"amount": "1", "currency": "EUR"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "currency_mismatch"

    refused = await _refused(stack, oid)
    assert [h["detail"].split(": ")[1].split()[1] for h in refused] == [
        "nothing_to_change",
        "invalid_request",
        "currency_mismatch",
    ]
    assert all(h["actor"] == "staff:tests" and h["status"] == "CONFIRMED" for h in refused)
    assert "lines.0.quantity" in refused[1]["detail"]
    # A refusal changes nothing: the order's version stays.
    before = (await stack.api.get(f"/orders/{oid}")).json()["version"]
    await stack.api.patch(f"/orders/{oid}", json={})
    assert (await stack.api.get(f"/orders/{oid}")).json()["version"] == before

    # The workflow's own refusals are written once, by the workflow.
    r = await stack.api.post(f"/orders/{oid}/review", json={"decision": "approve"})
    assert r.status_code == 409
    view = (await stack.api.get(f"/orders/{oid}")).json()
    assert [h["kind"] for h in view["history"]].count("review_refused") == 1
    assert len(await _refused(stack, oid)) == 4

    # Another customer's key cannot write into this order's history.
    stranger = stack.api_as(await stack.key(Role.CUSTOMER, "C-4040"))
    r = await stranger.patch(f"/orders/{oid}", json={})
    assert r.status_code in (404, 422)
    assert len(await _refused(stack, oid)) == 4


async def test_a_change_to_a_finished_order_is_in_its_history(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    oid = (await place(stack.api, order_body()))["order_id"]
    await wait_status(stack.api, oid, "CONFIRMED")
    r = await stack.api.post(f"/orders/{oid}/cancel", json={"reason": "no"})
    assert r.status_code == 200
    await stack.client.get_workflow_handle(f"order-{oid}").result()
    r = await stack.api.patch(f"/orders/{oid}", json={"contact": {"phone": "+1 5"}})
    assert r.status_code == 409 and r.json()["error"]["code"] == "closed"
    refused = await _refused(stack, oid)
    assert len(refused) == 1 and "409 closed" in refused[0]["detail"]
    assert refused[0]["status"] == "CANCELLED"
