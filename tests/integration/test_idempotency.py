"""Every change is safe to retry: Idempotency-Key on every changing route, per caller (§14)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import UpdateWorkflowExecutionLifecycleStage
from temporalio.api.update.v1 import UpdateRef, WaitPolicy
from temporalio.api.workflowservice.v1 import PollWorkflowExecutionUpdateRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.request_keys import make_request_key, request_hash
from models.api_keys import Role, key_id_of
from tests.integration.helpers import eventually, order_body, place, wait_booked, wait_status
from workflows.contract import order_workflow_id

HOLD = "11111"  # the carrier stand-in holds these parcels until told to move
LOST = "00000"  # and loses these


def _key() -> dict[str, str]:
    return {"Idempotency-Key": f"k-{uuid.uuid4().hex[:12]}"}


async def _view(stack, oid: str) -> dict[str, Any]:
    r = await stack.api.get(f"/orders/{oid}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _modified(view: dict[str, Any]) -> int:
    return [h["kind"] for h in view["history"]].count("modified")


async def _stored(stack, api_key: str, key: str) -> list[Any]:
    return await stack.sql(
        "select state, status_code, response_body, claimed_at from idempotency_keys"
        " where principal=:p and key=:k",
        p=key_id_of(api_key),
        k=key,
    )


async def _admitted(client: Client, order_id: str, update_id: str) -> bool:
    """Whether the Temporal server holds the update (it may wait there for a worker)."""
    ref = UpdateRef(
        workflow_execution=WorkflowExecution(workflow_id=order_workflow_id(order_id)),
        update_id=update_id,
    )
    stage = UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED
    request = PollWorkflowExecutionUpdateRequest(
        namespace=client.namespace, update_ref=ref, wait_policy=WaitPolicy(lifecycle_stage=stage)
    )
    try:
        await client.workflow_service.poll_workflow_execution_update(
            request, retry=False, timeout=timedelta(seconds=5)
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def _confirmed_order(stack, **kw: Any) -> str:
    order = await place(stack.api, order_body(**kw))
    await wait_status(stack.api, order["order_id"], "CONFIRMED")
    return str(order["order_id"])


def _patch(oid: str, body: dict[str, Any]) -> tuple[str, bytes]:
    """A PATCH as exact bytes, so a test can work out its fingerprint."""
    return f"/orders/{oid}", json.dumps(body).encode()


JSON = {"content-type": "application/json"}


async def test_patch_retried_after_its_answer_was_lost_gets_the_first_answer(make_stack) -> None:
    stack = await make_stack(review_amount_over=Decimal("50"))
    sku = await stack.add_product({"WH-SHA": 10}, price="60.00")
    order = await place(stack.api, order_body([(sku, 1)], postal_code=HOLD))
    oid = order["order_id"]
    await wait_status(stack.api, oid, "PENDING_REVIEW")
    key = _key()
    edit = {"lines": [{"sku": sku, "quantity": 2}]}
    # Applied, but its answer never reaches the client.
    lost = await stack.api.patch(f"/orders/{oid}", json=edit, headers=key)

    r = await stack.api.post(f"/orders/{oid}/review", json={"decision": "approve"})
    assert r.status_code == 200, r.text
    await wait_booked(stack.api, oid)
    # Without the key the same edit is now refused: the lines are locked after picking.
    fresh = await stack.api.patch(f"/orders/{oid}", json=edit)
    assert fresh.status_code == 409
    assert fresh.json()["error"]["code"] == "lines_locked_after_picking"

    retry = await stack.api.patch(f"/orders/{oid}", json=edit, headers=key)
    assert retry.status_code == 200, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == lost.json()
    assert lost.status_code == 200 and "Idempotent-Replayed" not in lost.headers
    view = await _view(stack, oid)
    assert view["lines"][0]["quantity"] == 2 and _modified(view) == 1
    # The key is bound to that edit: anything else under it is refused and changes nothing.
    other = await stack.api.patch(
        f"/orders/{oid}", json={"lines": [{"sku": sku, "quantity": 3}]}, headers=key
    )
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    elsewhere = await stack.api.post(f"/orders/{oid}/cancel", json={}, headers=key)
    assert elsewhere.status_code == 422
    assert (await _view(stack, oid))["status"] == "PACKED"
    await stack.api.post(f"/orders/{oid}/cancel", json={})


async def test_refund_retried_after_it_went_through_gets_its_first_answer(make_stack) -> None:
    stack = await make_stack()
    order = await place(stack.api, order_body(postal_code=LOST))
    oid = order["order_id"]
    await eventually(lambda: _view(stack, oid), lambda v: bool(v["open_exception"]))
    key = _key()
    action = {"action": "refund", "note": "lost"}
    first = await stack.api.post(f"/orders/{oid}/exception-actions", json=action, headers=key)
    assert first.status_code == 200, first.text
    view = await wait_status(stack.api, oid, "REFUNDED")

    fresh = await stack.api.post(f"/orders/{oid}/exception-actions", json=action)
    assert fresh.status_code == 409
    retry = await stack.api.post(f"/orders/{oid}/exception-actions", json=action, headers=key)
    assert retry.status_code == 200, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    ledger = (await stack.payment.get("/_admin/ledger")).json()
    auth = next(a for a in ledger["authorizations"] if a["order_id"] == oid)
    assert [Decimal(x["amount"]) for x in auth["refunds"]] == [Decimal(view["totals"]["total"])]


async def test_cancel_retried_after_a_paused_worker_gets_its_one_outcome(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    oid = await _confirmed_order(stack)
    key = _key()
    first = await stack.api.post(f"/orders/{oid}/cancel", json={"reason": "x"}, headers=key)
    assert first.status_code == 200 and first.json()["status"] == "CANCELLED", first.text
    # The worker pauses; the answer was lost on its way, and the client tries again.
    await stack.stop_worker()
    retry = await stack.api.post(f"/orders/{oid}/cancel", json={"reason": "x"}, headers=key)
    assert retry.status_code == 200, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    # Without the key the same cancel is a new request, refused as the order has ended.
    await stack.start_worker()
    await stack.client.get_workflow_handle(order_workflow_id(oid)).result()
    fresh = await stack.api.post(f"/orders/{oid}/cancel", json={"reason": "x"})
    assert fresh.status_code == 409 and fresh.json()["error"]["code"] == "closed"
    assert [h["kind"] for h in (await _view(stack, oid))["history"]].count("status:CANCELLED") == 1


async def test_identical_requests_at_once_make_one_change(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    oid = await _confirmed_order(stack)
    key = _key()
    edit = {"contact": {"phone": "+86 21 5555 0101"}}
    replies = await asyncio.gather(
        *(stack.api.patch(f"/orders/{oid}", json=edit, headers=key) for _ in range(4))
    )
    statuses = [r.status_code for r in replies]
    assert set(statuses) <= {200, 409} and 200 in statuses, [r.text for r in replies]
    assert all(r.json()["error"]["code"] == "request_in_progress" for r in replies if r.is_error)
    answers = [r.json() for r in replies if r.status_code == 200]
    assert all(a == answers[0] for a in answers)
    again = await stack.api.patch(f"/orders/{oid}", json=edit, headers=key)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    view = await _view(stack, oid)
    assert view["customer"]["phone"] == "+86 21 5555 0101" and _modified(view) == 1
    await stack.api.post(f"/orders/{oid}/cancel", json={})


async def test_a_retry_while_the_first_request_runs_is_told_so(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    oid = await _confirmed_order(stack)
    key = _key()
    path, body = _patch(oid, {"contact": {"phone": "+86 21 5555 0102"}})
    fingerprint = request_hash("PATCH", path, body)
    update_id = make_request_key(
        key_id_of(stack.staff_key) or "", key["Idempotency-Key"], fingerprint
    )
    await stack.stop_worker()
    first = asyncio.create_task(stack.api.patch(path, content=body, headers={**key, **JSON}))
    await eventually(lambda: _admitted(stack.client, oid, update_id), bool)

    running = await stack.api.patch(path, content=body, headers={**key, **JSON})
    assert running.status_code == 409, running.text
    assert running.json()["error"]["code"] == "request_in_progress"
    assert running.headers["Retry-After"]
    other = await stack.api.patch(path, json={"contact": {"phone": "+86 1"}}, headers=key)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"

    await stack.start_worker()
    answered = await first
    assert answered.status_code == 200, answered.text
    again = await stack.api.patch(path, content=body, headers={**key, **JSON})
    assert again.status_code == 200 and again.json() == answered.json()
    assert _modified(await _view(stack, oid)) == 1
    await stack.api.post(f"/orders/{oid}/cancel", json={})


async def test_a_request_that_died_is_taken_over_and_its_update_made_once(make_stack) -> None:
    lease = 0.05
    stack = await make_stack(warehouse_release_seconds=3600, idempotency_lease_seconds=lease)
    oid = await _confirmed_order(stack)
    key = _key()
    path, body = _patch(oid, {"contact": {"phone": "+86 21 5555 0103"}})
    fingerprint = request_hash("PATCH", path, body)
    update_id = make_request_key(
        key_id_of(stack.staff_key) or "", key["Idempotency-Key"], fingerprint
    )
    await stack.stop_worker()
    dying = asyncio.create_task(stack.api.patch(path, content=body, headers={**key, **JSON}))
    await eventually(lambda: _admitted(stack.client, oid, update_id), bool)
    # The API process dies mid-request: its claim stays, marked running.
    dying.cancel()
    await asyncio.gather(dying, return_exceptions=True)
    [(state, status, _, _)] = await _stored(stack, stack.staff_key, key["Idempotency-Key"])
    assert (state, status) == ("running", None)

    # The update it sent is made once a worker is back; its answer went nowhere.
    await stack.start_worker()
    await eventually(
        lambda: _view(stack, oid), lambda v: v["customer"]["phone"] == "+86 21 5555 0103"
    )
    await eventually(
        lambda: stack.sql(
            "select count(*) from idempotency_keys where key=:k"
            " and claimed_at < now() - make_interval(secs => :lease)",
            k=key["Idempotency-Key"],
            lease=lease,
        ),
        lambda rows: rows[0][0] == 1,
    )
    retry = await stack.api.patch(path, content=body, headers={**key, **JSON})
    assert retry.status_code == 200, retry.text
    assert retry.json()["customer"]["phone"] == "+86 21 5555 0103"
    assert _modified(await _view(stack, oid)) == 1
    [(state, status, _, _)] = await _stored(stack, stack.staff_key, key["Idempotency-Key"])
    assert (state, status) == ("done", 200)
    await stack.api.post(f"/orders/{oid}/cancel", json={})


async def test_keys_belong_to_their_caller(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    key = _key()
    # Staff place an order for one customer; another customer's key uses the same key string.
    other_customer = f"C-IDEM-{uuid.uuid4().hex[:6]}"
    staffs = await place(stack.api, order_body(customer_id=other_customer), **key)
    customer_key = await stack.key(Role.CUSTOMER, "C-1001")
    customer = stack.api_as(customer_key)
    r = await customer.post("/orders", json=order_body([("SKU-TEA-002", 1)]), headers=key)
    assert r.status_code == 201, r.text
    assert staffs["order_id"] not in r.text and other_customer not in r.text
    own = r.json()["order_id"]
    assert own != staffs["order_id"]
    again = await customer.post("/orders", json=order_body([("SKU-TEA-002", 1)]), headers=key)
    assert again.status_code == 200 and again.json()["order_id"] == own
    refused = await customer.post("/orders", json=order_body([("SKU-TEA-001", 5)]), headers=key)
    assert refused.status_code == 422 and staffs["order_id"] not in refused.text

    # The same on every other changing route: each caller's key is its own.
    await wait_status(stack.api, staffs["order_id"], "CONFIRMED")
    await wait_status(stack.api, own, "CONFIRMED")
    edit = {"contact": {"phone": "+86 21 5555 0104"}}
    mine = await stack.api.patch(f"/orders/{staffs['order_id']}", json=edit, headers=key)
    theirs = await customer.patch(f"/orders/{own}", json=edit, headers=key)
    assert mine.status_code == theirs.status_code == 200, theirs.text
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.json()["order_id"] == own and staffs["order_id"] not in theirs.text

    # Two staff keys, the very same request: each runs.
    sku = await stack.add_product({"WH-SHA": 0})
    restock = {"sku": sku, "warehouse_id": "WH-SHA", "quantity": 1}
    colleague = stack.api_as(await stack.key(Role.STAFF))
    shared = _key()
    for api in (stack.api, colleague):
        r = await api.post("/inventory/restock", json=restock, headers=shared)
        assert r.status_code == 200 and "Idempotent-Replayed" not in r.headers, r.text
    assert await stack.stock(sku) == {"WH-SHA": (2, 0)}

    # A refusal of the caller itself (403) is not kept.
    forbidden = _key()
    r = await customer.post("/inventory/restock", json=restock, headers=forbidden)
    assert r.status_code == 403
    assert await _stored(stack, customer_key, forbidden["Idempotency-Key"]) == []
    for oid in (staffs["order_id"], own):
        await stack.api.post(f"/orders/{oid}/cancel", json={})


async def test_an_order_placed_before_keys_were_per_caller_is_found_by_its_caller(
    make_stack,
) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    key = _key()
    body = order_body()
    order = await place(stack.api, body, **key)
    # As the key was recorded before keys became per caller.
    await stack.sql(
        "update order_intake set key=:old where key=:new",
        old=f"idem:{key['Idempotency-Key']}",
        new=f"idem:{key_id_of(stack.staff_key)}:{key['Idempotency-Key']}",
    )
    again = await stack.api.post("/orders", json=body, headers=key)
    assert again.status_code == 200 and again.json()["order_id"] == order["order_id"]
    # Another caller with the same key and request places its own order.
    customer = stack.api_as(await stack.key(Role.CUSTOMER, "C-1001"))
    theirs = await customer.post("/orders", json=body, headers=key)
    assert theirs.status_code == 201 and theirs.json()["order_id"] != order["order_id"]
    for oid in (order["order_id"], theirs.json()["order_id"]):
        await stack.api.post(f"/orders/{oid}/cancel", json={})


async def test_a_new_api_key_is_replayed_but_not_stored_readable(make_stack) -> None:
    stack = await make_stack(start_worker=False)
    admin_key = await stack.key(Role.ADMIN)
    admin = stack.api_as(admin_key)
    key = _key()
    ask = {"name": f"kiosk-{uuid.uuid4().hex[:8]}", "role": "staff"}
    made = await admin.post("/admin/api-keys", json=ask, headers=key)
    assert made.status_code == 201, made.text
    secret = made.json()["key"]
    [(state, status, sealed, _)] = await _stored(stack, admin_key, key["Idempotency-Key"])
    assert (state, status) == ("done", 201)
    assert secret.encode() not in bytes(sealed) and ask["name"].encode() not in bytes(sealed)
    again = await admin.post("/admin/api-keys", json=ask, headers=key)
    assert again.status_code == 201 and again.json() == made.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    keys = (await admin.get("/admin/api-keys")).json()["items"]
    assert [k["name"] for k in keys].count(ask["name"]) == 1
    # The replayed key is the one that was made, and it works.
    assert (await stack.api_as(secret).get("/orders", params={"limit": 1})).status_code == 200


async def test_expired_keys_are_purged_and_free_again(make_stack) -> None:
    stack = await make_stack(start_worker=False, idempotency_ttl_seconds=3600)
    principal = key_id_of(stack.staff_key)
    sku = await stack.add_product({"WH-SHA": 1})

    async def stored_earlier(key: str, age: str) -> None:
        await stack.sql(
            "insert into idempotency_keys (principal, key, request_hash, state, claim,"
            " status_code, created_at, claimed_at) values (:p, :k, 'another request', 'done',"
            " 'c', 200, now() - cast(:age as interval), now() - cast(:age as interval))",
            p=principal,
            k=key,
            age=age,
        )

    async def set_safety_stock(key: str) -> Any:
        return await stack.api.put(
            f"/inventory/{sku}/safety-stock",
            json={"safety_stock": 0},
            headers={"Idempotency-Key": key},
        )

    old = f"old-{uuid.uuid4().hex[:8]}"
    await stored_earlier(old, "2 days")
    # The first claim of an API process purges what is older than the keys' lifetime.
    r = await set_safety_stock(f"new-{uuid.uuid4().hex[:8]}")
    assert r.status_code == 200, r.text
    assert await stack.sql("select key from idempotency_keys where key=:k", k=old) == []

    # One that expired since is free again, whatever it was used for.
    expired = f"exp-{uuid.uuid4().hex[:8]}"
    await stored_earlier(expired, "2 hours")
    r = await set_safety_stock(expired)
    assert r.status_code == 200, r.text
    assert "Idempotent-Replayed" not in r.headers
    rows = await stack.sql(
        "select created_at > now() - interval '1 minute' from idempotency_keys where key=:k",
        k=expired,
    )
    assert rows == [(True,)]


async def test_a_malformed_key_is_refused(make_stack) -> None:
    stack = await make_stack(start_worker=False)
    sku = await stack.add_product({"WH-SHA": 1})
    for bad in ("x" * 201, "a key"):
        r = await stack.api.put(
            f"/inventory/{sku}/safety-stock",
            json={"safety_stock": 5},
            headers={"Idempotency-Key": bad},
        )
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_idempotency_key"
    assert (await stack.api.get(f"/inventory/{sku}")).json()["safety_stock"] == 0


async def test_a_request_still_running_keeps_its_key_past_the_lease(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600, idempotency_lease_seconds=0.6)
    oid = await _confirmed_order(stack)
    key = _key()
    path, body = _patch(oid, {"contact": {"phone": "+86 21 5555 0104"}})
    await stack.stop_worker()
    # With no worker the edit waits out its deadline, several leases long.
    slow = asyncio.create_task(stack.api.patch(path, content=body, headers={**key, **JSON}))
    await asyncio.sleep(2.5)
    assert not slow.done()
    # It renews its claim as it runs: a retry now is told it runs, not run a second time.
    again = await stack.api.patch(path, content=body, headers={**key, **JSON})
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "request_in_progress"
    first = await slow
    assert first.status_code == 503 and first.json()["error"]["code"] == "try_again"
    # Nothing changed, nothing kept: once a worker is back the same request runs anew.
    await stack.start_worker()
    retry = await stack.api.patch(path, content=body, headers={**key, **JSON})
    for _ in range(3):
        if retry.status_code != 503:
            break
        retry = await stack.api.patch(path, content=body, headers={**key, **JSON})
    assert retry.status_code == 200, retry.text
    assert _modified(await _view(stack, oid)) == 1
