"""Orders that wait: for review, for payment, for stock, for staff after a carrier exception."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

from tests.integration.helpers import eventually, order_body, place, wait_status


async def _alerts(stack, oid: str) -> list[dict]:
    return (await stack.api.get("/alerts", params={"order_id": oid})).json()["items"]


# ---- review -------------------------------------------------------------------------


async def test_risky_order_is_reviewed_and_approved(make_stack) -> None:
    stack = await make_stack(review_amount_over=Decimal("50"), warehouse_release_seconds=3600)
    sku = await stack.add_product({"WH-SHA": 5}, price="60.00")
    body = order_body([(sku, 1)], bill_to={**order_body()["ship_to"], "country": "NL"})
    order = await place(stack.api, body)
    oid = order["order_id"]
    view = await wait_status(stack.api, oid, "PENDING_REVIEW")
    assert any("over 50" in r for r in view["review_reasons"])
    assert any("billing country NL" in r for r in view["review_reasons"])
    assert await stack.stock(sku) == {"WH-SHA": (5, 1)}  # held while it waits
    assert [a["kind"] for a in await _alerts(stack, oid)] == ["review_needed"]
    assert view["payments"] == []  # nothing authorized before approval

    r = await stack.api.post(f"/orders/{oid}/review", json={"decision": "approve", "note": "ok"})
    assert r.status_code == 200, r.text
    view = await wait_status(stack.api, oid, "CONFIRMED")
    await stack.save_history(oid, "order_reviewed_v3")
    assert view["payments"][0]["status"] == "authorized"
    alerts = await _alerts(stack, oid)
    assert alerts[0]["resolved_at"] is not None
    again = await stack.api.post(f"/orders/{oid}/review", json={"decision": "reject"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_pending_review"
    await stack.api.post(f"/orders/{oid}/cancel", json={})


async def test_rejected_review_cancels_and_releases(make_stack) -> None:
    stack = await make_stack(review_amount_over=Decimal("50"))
    sku = await stack.add_product({"WH-SHA": 5}, price="60.00")
    order = await place(stack.api, order_body([(sku, 2)]))
    oid = order["order_id"]
    await wait_status(stack.api, oid, "PENDING_REVIEW")
    r = await stack.api.post(f"/orders/{oid}/review", json={"decision": "reject", "note": "fraud"})
    assert r.status_code == 200
    view = await wait_status(stack.api, oid, "CANCELLED")
    assert "rejected in review: fraud" in view["status_reason"]
    assert await stack.stock(sku) == {"WH-SHA": (5, 0)}


async def test_unreviewed_order_escalates_then_is_rejected(make_stack) -> None:
    stack = await make_stack(
        review_amount_over=Decimal("50"), review_escalate_seconds=1, review_timeout_seconds=2.5
    )
    sku = await stack.add_product({"WH-SHA": 5}, price="60.00")
    order = await place(stack.api, order_body([(sku, 1)]))
    oid = order["order_id"]
    view = await wait_status(stack.api, oid, "CANCELLED")
    assert view["status_reason"] == "rejected in review: not reviewed in time"
    kinds = [h["kind"] for h in view["history"]]
    assert kinds.index("alert:review_overdue") < kinds.index("status:CANCELLED")
    assert {a["kind"] for a in await _alerts(stack, oid)} == {"review_needed", "review_overdue"}
    assert await stack.stock(sku) == {"WH-SHA": (5, 0)}


async def test_velocity_and_new_customer_rules(make_stack) -> None:
    stack = await make_stack(
        review_orders_per_hour=2,
        review_new_customer_amount_over=Decimal("20"),
        warehouse_release_seconds=3600,
    )
    customer = f"C-NEW-{uuid.uuid4().hex[:6]}"
    first = await place(stack.api, order_body([("SKU-POT-001", 1)], customer_id=customer))
    view = await wait_status(stack.api, first["order_id"], "PENDING_REVIEW")
    assert any("first order of a new customer" in r for r in view["review_reasons"])
    ids = [first["order_id"]]
    for _ in range(2):
        o = await place(stack.api, order_body([("SKU-ACC-002", 1)], customer_id=customer))
        ids.append(o["order_id"])
    view = await wait_status(stack.api, ids[-1], "PENDING_REVIEW")
    assert any("other orders from this customer" in r for r in view["review_reasons"])
    for oid in ids:
        await stack.api.post(f"/orders/{oid}/cancel", json={})


# ---- pay later ----------------------------------------------------------------------


async def test_bank_transfer_waits_for_payment(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    body = order_body(payment={"method": "bank_transfer"})
    order = await place(stack.api, body)
    oid = order["order_id"]
    await wait_status(stack.api, oid, "AWAITING_PAYMENT")
    wrong = await stack.api.post(f"/orders/{oid}/payments", json={"amount": "1.00"})
    assert wrong.status_code == 409 and wrong.json()["error"]["code"] == "amount_mismatch"
    total = order["totals"]["total"]
    euros = {"amount": total, "currency": "EUR"}
    wrong = await stack.api.post(f"/orders/{oid}/payments", json=euros)
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "currency_mismatch"
    paid = {"amount": total, "currency": "USD", "reference": "B1"}
    r = await stack.api.post(f"/orders/{oid}/payments", json=paid)
    assert r.status_code == 200, r.text
    view = await wait_status(stack.api, oid, "CONFIRMED")
    assert view["payments"][0]["status"] == "paid"
    # Cancelled after payment: the bank transfer must be refunded by hand, and staff are told.
    await stack.api.post(f"/orders/{oid}/cancel", json={"reason": "changed mind"})
    view = await wait_status(stack.api, oid, "CANCELLED")
    assert view["payments"][0]["status"] == "refund_due"
    await stack.save_history(oid, "order_bank_transfer_v4")
    assert "refund_due" in [a["kind"] for a in await _alerts(stack, oid)]


async def test_unpaid_order_cancels_itself(make_stack) -> None:
    stack = await make_stack(payment_timeout_seconds=1)
    sku = await stack.add_product({"WH-SHA": 2})
    order = await place(stack.api, order_body([(sku, 2)], payment={"method": "invoice"}))
    view = await wait_status(stack.api, order["order_id"], "CANCELLED")
    assert view["status_reason"] == "not paid in time"
    assert await stack.stock(sku) == {"WH-SHA": (2, 0)}


async def test_card_without_token_is_refused(make_stack) -> None:
    stack = await make_stack(start_worker=False)
    r = await stack.api.post("/orders", json=order_body(payment={"method": "card"}))
    assert r.status_code == 422


# ---- backorder ----------------------------------------------------------------------


async def test_backorders_woken_by_restock_first_come_first_served(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    sku = await stack.add_product({"WH-SHA": 0})
    first = await place(stack.api, order_body([(sku, 2)]))
    await wait_status(stack.api, first["order_id"], "BACKORDERED")
    second = await place(stack.api, order_body([(sku, 2)]))
    await wait_status(stack.api, second["order_id"], "BACKORDERED")

    r = await stack.api.post(
        "/inventory/restock", json={"sku": sku, "warehouse_id": "WH-SHA", "quantity": 3}
    )
    assert r.status_code == 200, r.text
    assert r.json()["backorders_served"] == [first["order_id"]]
    await wait_status(stack.api, first["order_id"], "CONFIRMED")
    await asyncio.sleep(0.5)
    assert (await stack.api.get(f"/orders/{second['order_id']}")).json()["status"] == "BACKORDERED"

    r = await stack.api.post(
        "/inventory/restock", json={"sku": sku, "warehouse_id": "WH-SHA", "quantity": 1}
    )
    assert r.json()["backorders_served"] == [second["order_id"]]
    await wait_status(stack.api, second["order_id"], "CONFIRMED")
    await stack.save_history(second["order_id"], "order_backordered_v3")
    assert await stack.stock(sku) == {"WH-SHA": (4, 4)}
    for o in (first, second):
        await stack.api.post(f"/orders/{o['order_id']}/cancel", json={})

    bad = await stack.api.post(
        "/inventory/restock", json={"sku": sku, "warehouse_id": "WH-NOPE", "quantity": 1}
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_warehouse"


async def test_backorder_expires(make_stack) -> None:
    stack = await make_stack(backorder_timeout_seconds=1)
    sku = await stack.add_product({"WH-SHA": 1})
    order = await place(stack.api, order_body([(sku, 3)]))
    view = await wait_status(stack.api, order["order_id"], "CANCELLED")
    assert view["status_reason"] == "backorder not filled in time"
    rows = await stack.sql("select status from backorders where order_id=:o", o=order["order_id"])
    assert rows == [("closed",)]
    assert await stack.stock(sku) == {"WH-SHA": (1, 0)}


# ---- carrier exceptions -------------------------------------------------------------


async def test_lost_parcel_is_reshipped(make_stack) -> None:
    stack = await make_stack()
    sku = await stack.add_product({"WH-SHA": 5})
    order = await place(stack.api, order_body([(sku, 1)], postal_code="00000"))
    oid = order["order_id"]
    view = await eventually(
        lambda: _view(stack, oid), lambda v: bool(v["open_exception"]), within=30
    )
    assert "LOST" in view["open_exception"]
    await eventually(
        lambda: _alerts(stack, oid), lambda a: "carrier_exception" in [x["kind"] for x in a]
    )
    assert await stack.stock(sku) == {"WH-SHA": (4, 0)}

    # The replacement goes to a good address; the lost one cannot be picked up again.
    good = {**order_body()["ship_to"]}
    stuck = await stack.api.patch(f"/orders/{oid}", json={"ship_to": good})
    assert stuck.status_code == 409
    r = await stack.api.post(f"/orders/{oid}/exception-actions", json={"action": "reship"})
    assert r.status_code == 200, r.text
    assert len(r.json()["shipments"]) == 2
    await stack.save_history(oid, "order_reshipped_v3")
    assert await stack.stock(sku) == {"WH-SHA": (4, 1)}


async def test_lost_parcel_is_refunded(make_stack) -> None:
    stack = await make_stack()
    order = await place(stack.api, order_body(postal_code="00000"))
    oid = order["order_id"]
    await eventually(lambda: _view(stack, oid), lambda v: bool(v["open_exception"]))
    none = await stack.api.post(f"/orders/{oid}/exception-actions", json={"action": "bogus"})
    assert none.status_code == 422
    r = await stack.api.post(
        f"/orders/{oid}/exception-actions", json={"action": "refund", "note": "lost"}
    )
    assert r.status_code == 200, r.text
    view = await wait_status(stack.api, oid, "REFUNDED")
    await stack.save_history(oid, "order_lost_refunded_v3")
    assert view["payments"][0]["status"] == "refunded"
    ledger = (await stack.payment.get("/_admin/ledger")).json()
    auth = next(a for a in ledger["authorizations"] if a["order_id"] == oid)
    assert [Decimal(x["amount"]) for x in auth["refunds"]] == [Decimal(view["totals"]["total"])]


async def test_address_problem_customer_contacted_then_delivered(make_stack) -> None:
    stack = await make_stack(after_sales_window_seconds=3600)
    order = await place(stack.api, order_body(postal_code="33333"))
    oid = order["order_id"]
    # The carrier sorts the address out by itself here, so the exception may already be over.
    view = await wait_status(stack.api, oid, "DELIVERED")
    kinds = [h["kind"] for h in view["history"]]
    assert "carrier_exception" in kinds and "notified:delivery_issue" in kinds
    assert view["open_exception"] == ""
    alerts = await eventually(
        lambda: _alerts(stack, oid), lambda a: any(x["kind"] == "carrier_exception" for x in a)
    )
    assert all(a["resolved_at"] for a in alerts if a["kind"] == "carrier_exception")
    late = await stack.api.post(
        f"/orders/{oid}/exception-actions", json={"action": "contact_customer"}
    )
    assert late.status_code == 409


async def test_damaged_parcel_customer_contacted_then_refunded(make_stack) -> None:
    stack = await make_stack()
    order = await place(stack.api, order_body(postal_code="22222", customer_id="C-DMG"))
    oid = order["order_id"]
    await eventually(lambda: _view(stack, oid), lambda v: "DAMAGED" in v["open_exception"])
    r = await stack.api.post(
        f"/orders/{oid}/exception-actions",
        json={"action": "contact_customer", "note": "asked for photos"},
    )
    assert r.status_code == 200 and r.json()["open_exception"]  # still open
    r = await stack.api.post(f"/orders/{oid}/exception-actions", json={"action": "refund"})
    assert r.status_code == 200
    view = await wait_status(stack.api, oid, "REFUNDED")
    assert "exception_contact_customer" in [h["kind"] for h in view["history"]]


async def test_no_exception_no_action(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    order = await place(stack.api, order_body())
    oid = order["order_id"]
    await wait_status(stack.api, oid, "CONFIRMED")
    r = await stack.api.post(f"/orders/{oid}/exception-actions", json={"action": "reship"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_open_exception"
    await stack.api.post(f"/orders/{oid}/cancel", json={})


# ---- SLA ----------------------------------------------------------------------------


async def test_order_stuck_past_its_sla_raises_one_alert(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600, sla_seconds={"CONFIRMED": 1})
    order = await place(stack.api, order_body())
    oid = order["order_id"]
    await wait_status(stack.api, oid, "CONFIRMED")
    alerts = await eventually(
        lambda: _alerts(stack, oid), lambda a: any(x["kind"] == "sla_breached" for x in a)
    )
    await asyncio.sleep(1.5)
    assert [a["kind"] for a in await _alerts(stack, oid)].count("sla_breached") == 1
    assert "CONFIRMED" in alerts[0]["message"]
    await stack.api.post(f"/orders/{oid}/cancel", json={})


async def _view(stack, oid: str) -> dict:
    return (await stack.api.get(f"/orders/{oid}")).json()
