"""Edits and cancels through validated updates and through signals (§3)."""

from __future__ import annotations

from decimal import Decimal

from tests.integration.helpers import eventually, order_body, place, wait_booked, wait_status
from workflows import contract as c

HOLD = "11111"  # the carrier stand-in holds these parcels until told to move


async def _advance(stack, order_id: str) -> None:
    view = (await stack.api.get(f"/orders/{order_id}")).json()
    shipment_id = view["shipments"][-1]["shipment_id"]
    r = await stack.carrier.post(f"/_admin/shipments/{shipment_id}/advance")
    assert r.status_code == 200, r.text


async def test_lines_and_address_change_before_picking(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    sku = await stack.add_product({"WH-SHA": 10}, price="10.00")
    order = await place(stack.api, order_body([(sku, 1)]))
    oid = order["order_id"]
    await wait_status(stack.api, oid, "CONFIRMED")

    r = await stack.api.patch(f"/orders/{oid}", json={"lines": [{"sku": sku, "quantity": 4}]})
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["lines"][0]["quantity"] == 4
    assert view["totals"]["subtotal"] == "40.00"
    # The new total is above the first authorization: a new one replaces it.
    assert [p["status"] for p in view["payments"]] == ["voided", "authorized"]
    assert Decimal(view["payments"][1]["amount"]) == Decimal(view["totals"]["total"])
    assert await stack.stock(sku) == {"WH-SHA": (10, 4)}

    new_address = {**order_body()["ship_to"], "line1": "99 Huaihai Rd"}
    r = await stack.api.patch(f"/orders/{oid}", json={"ship_to": new_address})
    assert r.status_code == 200, r.text
    assert r.json()["ship_to"]["line1"] == "99 Huaihai Rd"

    r = await stack.api.patch(f"/orders/{oid}", json={"contact": {"phone": "+86 1"}})
    assert r.status_code == 200 and r.json()["customer"]["phone"] == "+86 1"

    # More than is in stock is refused and changes nothing.
    r = await stack.api.patch(f"/orders/{oid}", json={"lines": [{"sku": sku, "quantity": 11}]})
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "insufficient_stock"
    assert await stack.stock(sku) == {"WH-SHA": (10, 4)}

    kinds = [h["kind"] for h in (await stack.api.get(f"/orders/{oid}")).json()["history"]]
    assert kinds.count("modified") == 3 and kinds.count("edit_refused") == 1

    r = await stack.api.post(f"/orders/{oid}/cancel", json={"reason": "changed my mind"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "CANCELLED"
    await stack.save_history(oid, "order_edited_then_cancelled_v3")


async def test_edits_refused_after_picking_and_after_shipping(make_stack) -> None:
    stack = await make_stack()
    order = await place(stack.api, order_body(postal_code=HOLD))
    oid = order["order_id"]
    await wait_booked(stack.api, oid)

    r = await stack.api.patch(
        f"/orders/{oid}", json={"lines": [{"sku": "SKU-TEA-001", "quantity": 5}]}
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "lines_locked_after_picking"

    # The address may still change while packed: the parcel is re-booked to the new address.
    first_shipment = (await stack.api.get(f"/orders/{oid}")).json()["shipments"][0]
    moved = {**order_body(postal_code=HOLD)["ship_to"], "line1": "2 Nanjing Rd"}
    r = await stack.api.patch(f"/orders/{oid}", json={"ship_to": moved})
    assert r.status_code == 200, r.text
    shipments = r.json()["shipments"]
    assert [s["status"] for s in shipments] == ["cancelled", "booked"]
    carrier_view = (
        await stack.carrier.get(f"/v1/shipments/{first_shipment['shipment_id']}")
    ).json()
    assert carrier_view["status"] == "cancelled"

    await _advance(stack, oid)
    await wait_status(stack.api, oid, "SHIPPED")
    r = await stack.api.patch(f"/orders/{oid}", json={"ship_to": moved})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "address_locked_after_shipping"
    r = await stack.api.post(f"/orders/{oid}/cancel", json={"reason": "too late"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "cancel_locked_after_shipping"
    assert "return" in r.json()["error"]["message"].lower()

    history = (await stack.api.get(f"/orders/{oid}")).json()["history"]
    refused = [h for h in history if h["kind"] in ("edit_refused", "cancel_refused")]
    assert len(refused) == 3
    for _ in range(3):  # in transit, out for delivery, delivered
        await _advance(stack, oid)
    await wait_status(stack.api, oid, "COMPLETED")
    await stack.save_history(oid, "order_edits_refused_v3")


async def test_cancel_compensates_stock_payment_and_shipment(make_stack) -> None:
    stack = await make_stack()
    sku = await stack.add_product({"WH-SHA": 3})
    order = await place(stack.api, order_body([(sku, 2)], postal_code=HOLD))
    oid = order["order_id"]
    view = await wait_booked(stack.api, oid)
    assert await stack.stock(sku) == {"WH-SHA": (3, 2)}

    r = await stack.api.post(f"/orders/{oid}/cancel", json={"reason": "customer asked"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "CANCELLED"

    assert await stack.stock(sku) == {"WH-SHA": (3, 0)}
    assert await stack.sql("select status from payments where order_id=:o", o=oid) == [("voided",)]
    held = await stack.sql(
        "select count(*) from reservations where order_id=:o and state='held'", o=oid
    )
    assert held[0][0] == 0
    ledger = (await stack.payment.get("/_admin/ledger")).json()
    auth = next(a for a in ledger["authorizations"] if a["order_id"] == oid)
    assert auth["status"] == "voided" and not auth["captures"]
    shipment_id = view["shipments"][0]["shipment_id"]
    assert (await stack.carrier.get(f"/v1/shipments/{shipment_id}")).json()["status"] == "cancelled"
    final = await wait_status(stack.api, oid, "CANCELLED")
    assert final["status_reason"] == "customer asked"
    await stack.save_history(oid, "order_cancelled_when_packed_v3")


async def test_signals_follow_the_same_rules(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    order = await place(stack.api, order_body([("SKU-TEA-002", 1)]))
    oid = order["order_id"]
    await wait_status(stack.api, oid, "CONFIRMED")
    handle = stack.client.get_workflow_handle(c.order_workflow_id(oid))

    await handle.signal(
        c.SIGNAL_MODIFY,
        c.ModifyRequest(contact=c.Contact(email="new@example.com"), actor="cli:staff"),
    )
    view = await eventually(
        lambda: _view(stack, oid), lambda v: v["customer"]["email"] == "new@example.com"
    )
    # A signal's actor is whatever its sender typed: kept, and marked as a claim.
    assert any(
        h["actor"] == "cli:staff (claimed)" and h["kind"] == "modified" for h in view["history"]
    )

    await handle.signal(c.SIGNAL_CANCEL, c.CancelRequest(reason="by signal", actor="cli:staff"))
    view = await wait_status(stack.api, oid, "CANCELLED")
    assert view["status_reason"] == "by signal"
    await stack.save_history(oid, "order_signals_v4")

    # A refused signal edit lands in the history instead of changing the order.
    stack2 = await make_stack()
    order2 = await place(stack2.api, order_body(postal_code=HOLD))
    oid2 = order2["order_id"]
    await wait_booked(stack2.api, oid2)
    await stack.client.get_workflow_handle(c.order_workflow_id(oid2)).signal(
        c.SIGNAL_MODIFY,
        c.ModifyRequest(lines=[{"sku": "SKU-TEA-001", "quantity": 9}], actor="cli:staff"),
    )
    view2 = await eventually(
        lambda: _view(stack2, oid2),
        lambda v: any(h["kind"] == "edit_refused" for h in v["history"]),
    )
    assert view2["lines"][0]["quantity"] == 2
    # Nobody waits for a signal's answer: staff are alerted to the refusal.
    view2 = await eventually(
        lambda: _view(stack2, oid2),
        lambda v: any(a["kind"] == "signal_refused" for a in v["alerts"]),
    )
    await stack2.api.post(f"/orders/{oid2}/cancel", json={"reason": "cleanup"})


async def _view(stack, oid: str) -> dict:
    return (await stack.api.get(f"/orders/{oid}")).json()


async def test_edit_while_the_card_is_being_authorized_is_authorized_too(make_stack) -> None:
    # The authorization comes back before the order shows CONFIRMED; an edit waiting for the
    # order's lock gets it first and must not leave a total bigger than what is authorized.
    stack = await make_stack(warehouse_release_seconds=1)
    sku = await stack.add_product({"WH-SHA": 10}, price="10.00")
    await stack.payment.post("/_admin/latency", json={"seconds": 1.5})
    try:
        oid = (await place(stack.api, order_body([(sku, 1)])))["order_id"]
        await eventually(
            lambda: stack.api.get(f"/orders/{oid}"), lambda r: r.json()["status"] == "PLACED"
        )
        r = await stack.api.patch(f"/orders/{oid}", json={"lines": [{"sku": sku, "quantity": 3}]})
        assert r.status_code == 200, r.text
    finally:
        await stack.payment.post("/_admin/latency", json={"seconds": 0})
    view = await wait_status(stack.api, oid, {"COMPLETED", "FAILED"}, 60)
    assert view["status"] == "COMPLETED"
    ledger = (await stack.payment.get("/_admin/ledger")).json()["authorizations"]
    auths = {a["id"]: a for a in ledger if a["order_id"] == oid}
    captured = [a for a in auths.values() if a["captures"]]
    assert len(captured) == 1
    assert Decimal(captured[0]["captured_amount"]) == Decimal(view["totals"]["total"])
    assert all(a["voids"] for a in auths.values() if not a["captures"])
    await stack.save_history(oid, "order_edited_while_authorizing")
