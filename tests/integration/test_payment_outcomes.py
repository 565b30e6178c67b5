"""Declines are business outcomes; outages are retried without ever charging twice (§2.3)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from tests.integration.helpers import order_body, place, wait_booked, wait_status


async def _auths(stack, order_id: str) -> list[dict]:
    ledger = (await stack.payment.get("/_admin/ledger")).json()
    return [a for a in ledger["authorizations"] if a["order_id"] == order_id]


async def test_decline_then_new_payment_method(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    sku = await stack.add_product({"WH-SHA": 4})
    order = await place(stack.api, order_body([(sku, 3)], token="tok_decline"))
    oid = order["order_id"]
    view = await wait_status(stack.api, oid, "AWAITING_PAYMENT")
    assert "declined" in view["status_reason"]
    assert await stack.stock(sku) == {"WH-SHA": (4, 3)}  # held while the customer decides

    r = await stack.api.put(f"/orders/{oid}/payment-method", json={"token": "tok_ok"})
    assert r.status_code == 200, r.text
    view = await wait_status(stack.api, oid, "CONFIRMED")
    assert [p["status"] for p in view["payments"]] == ["authorized"]
    again = await stack.api.put(f"/orders/{oid}/payment-method", json={"token": "tok_ok"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "not_waiting_for_payment_method"
    await stack.api.post(f"/orders/{oid}/cancel", json={})


async def test_decline_without_new_method_fails_and_releases_stock(make_stack) -> None:
    stack = await make_stack(new_payment_method_seconds=1)
    sku = await stack.add_product({"WH-SHA": 4})
    order = await place(stack.api, order_body([(sku, 3)], token="tok_decline"))
    view = await wait_status(stack.api, order["order_id"], "FAILED")
    assert "declined" in view["status_reason"]
    assert await stack.stock(sku) == {"WH-SHA": (4, 0)}
    assert await _auths(stack, order["order_id"]) == []
    await stack.save_history(order["order_id"], "order_declined_v3")


async def test_flaky_gateway_error_is_retried(make_stack) -> None:
    stack = await make_stack()
    order = await place(stack.api, order_body(token="tok_flaky"))
    await wait_status(stack.api, order["order_id"], "COMPLETED")
    auths = await _auths(stack, order["order_id"])
    assert len(auths) == 1 and len(auths[0]["captures"]) == 1


async def test_gateway_outage_then_recovery_captures_once(make_stack) -> None:
    stack = await make_stack()
    await stack.payment.post("/_admin/outage", json={"down": True})
    try:
        order = await place(stack.api, order_body())
        oid = order["order_id"]
        # While the gateway is down the order waits: not failed, not confirmed.
        await asyncio.sleep(1.5)
        view = (await stack.api.get(f"/orders/{oid}")).json()
        assert view["status"] == "PLACED"
    finally:
        await stack.payment.post("/_admin/outage", json={"down": False})
    view = await wait_status(stack.api, oid, "COMPLETED")
    auths = await _auths(stack, oid)
    assert len(auths) == 1
    assert [Decimal(c["amount"]) for c in auths[0]["captures"]] == [
        Decimal(view["totals"]["total"])
    ]


async def test_outage_at_capture_time_still_captures_once(make_stack) -> None:
    stack = await make_stack()
    order = await place(stack.api, order_body(postal_code="11111"))
    oid = order["order_id"]
    view = await wait_booked(stack.api, oid)
    await stack.payment.post("/_admin/outage", json={"down": True})
    try:
        shipment_id = view["shipments"][0]["shipment_id"]
        await stack.carrier.post(f"/_admin/shipments/{shipment_id}/advance")
        await asyncio.sleep(1.5)
        assert (await stack.api.get(f"/orders/{oid}")).json()["status"] == "PACKED"
    finally:
        await stack.payment.post("/_admin/outage", json={"down": False})
    await wait_status(stack.api, oid, "SHIPPED")
    auths = await _auths(stack, oid)
    assert len(auths) == 1 and len(auths[0]["captures"]) == 1
