"""Returns and exchanges within the after-sales window (§5)."""

from __future__ import annotations

from decimal import Decimal

from tests.integration.helpers import eventually, order_body, place, wait_status


async def _delivered(stack, lines, **kw) -> dict:
    order = await place(stack.api, order_body(lines, **kw))
    return await wait_status(stack.api, order["order_id"], "DELIVERED")


async def _return(stack, oid: str, body: dict) -> str:
    r = await stack.api.post(f"/orders/{oid}/returns", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "RETURN_REQUESTED"
    return [x["id"] for x in r.json()["related"] if x["type"] == "return"][-1]


async def _return_status(stack, rid: str, status: str) -> dict:
    async def probe() -> dict:
        return (await stack.api.get(f"/returns/{rid}")).json()

    return await eventually(probe, lambda v: v.get("status") == status)


async def test_partial_return_refunded_and_restocked(make_stack) -> None:
    stack = await make_stack(after_sales_window_seconds=3600)
    sku = await stack.add_product({"WH-SHA": 10}, price="20.00")
    order = await _delivered(stack, [(sku, 3)])
    oid = order["order_id"]
    assert await stack.stock(sku) == {"WH-SHA": (7, 0)}

    rid = await _return(
        stack,
        oid,
        {"lines": [{"sku": sku, "quantity": 1}], "reason": "too big", "evidence": "photo-123.jpg"},
    )
    view = await _return_status(stack, rid, "REQUESTED")
    assert view["evidence"] == "photo-123.jpg"
    # 1 of 3 x 20.00: its share of goods and their tax, not of shipping (free here: 60 < 99)
    assert Decimal(view["refund_amount"]) == Decimal("22.60")

    r = await stack.api.post(f"/returns/{rid}/decision", json={"decision": "approve"})
    assert r.status_code == 200, r.text
    await _return_status(stack, rid, "RECEIVED")
    early = await stack.api.post(f"/returns/{rid}/decision", json={"decision": "reject"})
    assert early.status_code == 409
    r = await stack.api.post(f"/returns/{rid}/receipt", json={"condition": "sellable"})
    assert r.status_code == 200, r.text
    done = await _return_status(stack, rid, "REFUNDED")
    assert Decimal(done["refunded"]) == Decimal("22.60")
    assert await stack.stock(sku) == {"WH-SHA": (8, 0)}

    order = await wait_status(stack.api, oid, "RETURNED")
    await stack.save_history(oid, "order_returned_v3")
    await stack.client.get_workflow_handle(f"return-{rid}").result()
    await stack.save_history(rid, "return_refunded_v2")
    ledger = (await stack.payment.get("/_admin/ledger")).json()
    auth = next(a for a in ledger["authorizations"] if a["order_id"] == oid)
    assert [Decimal(x["amount"]) for x in auth["refunds"]] == [Decimal("22.60")]
    # What is left may still come back; more than is left may not.
    over = await stack.api.post(
        f"/orders/{oid}/returns", json={"lines": [{"sku": sku, "quantity": 3}], "reason": "x"}
    )
    assert over.status_code == 409 and over.json()["error"]["code"] == "over_quantity"


async def test_rejected_return_leaves_the_order_delivered(make_stack) -> None:
    stack = await make_stack(after_sales_window_seconds=3600)
    order = await _delivered(stack, [("SKU-TEA-002", 1)])
    oid = order["order_id"]
    rid = await _return(
        stack, oid, {"lines": [{"sku": "SKU-TEA-002", "quantity": 1}], "reason": "changed mind"}
    )
    r = await stack.api.post(
        f"/returns/{rid}/decision", json={"decision": "reject", "note": "used"}
    )
    assert r.status_code == 200
    await _return_status(stack, rid, "REJECTED")
    view = await wait_status(stack.api, oid, "DELIVERED")
    assert "return_rejected" in [h["kind"] for h in view["history"]]
    await stack.save_history(rid, "return_rejected_v2")


async def test_damaged_return_is_refunded_but_not_restocked(make_stack) -> None:
    stack = await make_stack(after_sales_window_seconds=3600)
    sku = await stack.add_product({"WH-SHA": 2}, price="20.00")
    order = await _delivered(stack, [(sku, 2)])
    oid = order["order_id"]
    rid = await _return(stack, oid, {"lines": [{"sku": sku, "quantity": 2}], "reason": "broken"})
    await stack.api.post(f"/returns/{rid}/decision", json={"decision": "approve"})
    await _return_status(stack, rid, "RECEIVED")
    await stack.api.post(f"/returns/{rid}/receipt", json={"condition": "damaged"})
    done = await _return_status(stack, rid, "REFUNDED")
    # Everything came back: the whole amount paid, shipping included.
    assert done["refund_amount"] == order["totals"]["total"]
    assert await stack.stock(sku) == {"WH-SHA": (0, 0)}
    await wait_status(stack.api, oid, "REFUNDED")


async def test_exchange_starts_a_linked_order(make_stack) -> None:
    stack2 = await make_stack(after_sales_window_seconds=3600)
    order = await place(stack2.api, order_body([("SKU-CUP-001", 1)]))
    oid = order["order_id"]
    await wait_status(stack2.api, oid, "DELIVERED")
    rid = await _return(
        stack2,
        oid,
        {
            "lines": [{"sku": "SKU-CUP-001", "quantity": 1}],
            "reason": "wrong colour",
            "kind": "exchange",
            "exchange_lines": [{"sku": "SKU-CUP-002", "quantity": 1}],
        },
    )
    await stack2.api.post(f"/returns/{rid}/decision", json={"decision": "approve"})
    await _return_status(stack2, rid, "RECEIVED")
    await stack2.api.post(f"/returns/{rid}/receipt", json={"condition": "sellable"})
    done = await _return_status(stack2, rid, "EXCHANGED")
    new_id = done["exchange_order_id"]
    # Known the moment the return names it, whether or not its workflow has answered yet.
    first = await stack2.api.get(f"/orders/{new_id}")
    assert first.status_code == 200, first.text
    assert first.json()["lines"][0]["sku"] == "SKU-CUP-002"
    new = await wait_status(stack2.api, new_id, {"CONFIRMED", "PACKED", "SHIPPED", "DELIVERED"})
    assert new["lines"][0]["sku"] == "SKU-CUP-002"
    assert new["payments"][0]["status"] == "paid"
    assert {"type": "exchange-of", "id": oid} in new["related"]
    original = await wait_status(stack2.api, oid, "RETURNED")
    await stack2.save_history(rid, "return_exchanged_v2")
    assert {"type": "exchange", "id": new_id} in original["related"]


async def test_return_refusals(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    order = await place(stack.api, order_body([("SKU-TEA-001", 1)]))
    oid = order["order_id"]
    await wait_status(stack.api, oid, "CONFIRMED")
    body = {"lines": [{"sku": "SKU-TEA-001", "quantity": 1}], "reason": "x"}
    r = await stack.api.post(f"/orders/{oid}/returns", json=body)
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_delivered"
    await stack.api.post(f"/orders/{oid}/cancel", json={})

    quick = await make_stack()  # after-sales window of 1 s
    order = await place(quick.api, order_body([("SKU-TEA-001", 1)]))
    await wait_status(quick.api, order["order_id"], "COMPLETED")
    r = await quick.api.post(f"/orders/{order['order_id']}/returns", json=body)
    assert r.status_code == 409 and r.json()["error"]["code"] == "outside_return_window"

    r = await quick.api.post(
        f"/orders/{order['order_id']}/returns", json={**body, "kind": "exchange"}
    )
    assert r.status_code == 422
    history = (await quick.api.get(f"/orders/{order['order_id']}")).json()["history"]
    # The order's own story ends at COMPLETED; the API's refusals since are kept beside it.
    own = [h for h in history if h["kind"] != "request_refused"]
    assert own[-1]["kind"] == "status:COMPLETED"
    refused = [h["detail"] for h in history if h["kind"] == "request_refused"]
    assert len(refused) == 2 and "409 outside_return_window" in refused[0]
