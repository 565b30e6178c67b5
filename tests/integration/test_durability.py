"""No oversell under concurrency, and orders that survive their worker (§10)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from tests.integration.helpers import TERMINAL, order_body, place, wait_booked, wait_status


async def test_fifty_orders_for_ten_units(make_stack) -> None:
    # The 40 that find no stock wait as backorders, briefly here, then cancel themselves.
    stack = await make_stack(warehouse_release_seconds=3600, backorder_timeout_seconds=2)
    sku = await stack.add_product({"WH-SHA": 6, "WH-RTM": 4})
    orders = await asyncio.gather(
        *(place(stack.api, order_body([(sku, 1)], customer_id=f"C-RUSH-{i}")) for i in range(50))
    )
    views = await asyncio.gather(
        *(wait_status(stack.api, o["order_id"], {"CONFIRMED", "CANCELLED"}, 60) for o in orders)
    )
    statuses = [v["status"] for v in views]
    assert statuses.count("CONFIRMED") == 10
    assert statuses.count("CANCELLED") == 40
    for v in views:
        if v["status"] == "CANCELLED":
            assert v["status_reason"] == "backorder not filled in time"
            assert "status:BACKORDERED" in [h["kind"] for h in v["history"]]
    stock = await stack.stock(sku)
    assert stock == {"WH-SHA": (6, 6), "WH-RTM": (4, 4)}
    held = await stack.sql("select sum(quantity) from reservations where sku=:s", s=sku)
    assert held == [(10,)]

    confirmed = [v["order_id"] for v in views if v["status"] == "CONFIRMED"]
    await asyncio.gather(*(stack.api.post(f"/orders/{o}/cancel", json={}) for o in confirmed))
    assert await stack.stock(sku) == {"WH-SHA": (6, 0), "WH-RTM": (4, 0)}


async def test_order_finishes_after_its_worker_restarts(make_stack) -> None:
    stack = await make_stack()
    order = await place(stack.api, order_body(postal_code="11111"))
    oid = order["order_id"]
    view = await wait_booked(stack.api, oid)

    await stack.stop_worker()
    # The carrier moves on while no worker runs; Temporal keeps the signal for the order.
    shipment_id = view["shipments"][0]["shipment_id"]
    for _ in range(4):
        r = await stack.carrier.post(f"/_admin/shipments/{shipment_id}/advance")
        assert r.status_code == 200
    await asyncio.sleep(0.5)
    stored = (await stack.api.get(f"/orders/{oid}")).json()
    assert stored["status"] == "PACKED"

    await stack.start_worker()
    final = await wait_status(stack.api, oid, TERMINAL, 60)
    assert final["status"] == "COMPLETED"
    ledger = (await stack.payment.get("/_admin/ledger")).json()
    auths = [a for a in ledger["authorizations"] if a["order_id"] == oid]
    assert len(auths) == 1 and len(auths[0]["captures"]) == 1


async def test_stock_changed_behind_the_orders_back_is_restated_before_picking(
    make_stack,
) -> None:
    # What a local activity leaves when its workflow task never completes (the worker or the
    # server died first): here an edit's bigger reservation that the order never learnt of.
    stack = await make_stack(warehouse_release_seconds=2)
    sku = await stack.add_product({"WH-SHA": 10})
    oid = (await place(stack.api, order_body([(sku, 2)])))["order_id"]
    await wait_status(stack.api, oid, "CONFIRMED")
    async with stack.sessions.begin() as s:
        await s.execute(
            text("update reservations set quantity = 3 where order_id = :o and sku = :s"),
            {"o": oid, "s": sku},
        )
        await s.execute(text("update stock set reserved = 3 where sku = :s"), {"s": sku})

    final = await wait_status(stack.api, oid, TERMINAL, 60)
    assert final["status"] == "COMPLETED"
    shipped = await stack.sql(
        "select sum(quantity) from reservations where order_id = :o and state = 'shipped'", o=oid
    )
    assert shipped == [(2,)]
    assert await stack.stock(sku) == {"WH-SHA": (8, 0)}
    await stack.save_history(oid, "order_held_before_picking")
