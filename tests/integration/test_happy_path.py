"""A card order from placement to COMPLETED, checked in PostgreSQL and at the gateway."""

from __future__ import annotations

from decimal import Decimal

from tests.integration.helpers import order_body, place, wait_status


async def test_card_order_runs_to_completed(make_stack) -> None:
    stack = await make_stack()
    sku = await stack.add_product({"WH-SHA": 5}, price="12.50")
    before = await stack.stock(sku)

    created = await place(stack.api, order_body([(sku, 2)]))
    order_id = created["order_id"]
    assert order_id.startswith("SO-")
    assert created["status"] == "PLACED"
    # 2 x 12.50 = 25.00, CN shipping 5.00, 13 % tax on 30.00 = 3.90
    assert created["totals"] == {
        "currency": "USD",
        "subtotal": "25.00",
        "discount": "0.00",
        "shipping": "5.00",
        "tax": "3.90",
        "total": "33.90",
    }

    view = await wait_status(stack.api, order_id, "COMPLETED")
    await stack.save_history(order_id, "order_completed_v6", closed=True)
    kinds = [h["kind"] for h in view["history"]]
    for step in (
        "status:CONFIRMED",
        "status:PICKING",
        "status:PACKED",
        "shipment_booked",
        "status:SHIPPED",
        "payment_captured",
        "status:DELIVERED",
        "status:COMPLETED",
    ):
        assert step in kinds, (step, kinds)
    assert view["shipments"][0]["tracking_number"]

    # Read model, history rows, stock and payment in PostgreSQL.
    row = await stack.sql("select status, total from orders where order_id=:o", o=order_id)
    assert row == [("COMPLETED", Decimal("33.90"))]
    events = await stack.sql("select count(*) from order_events where order_id=:o", o=order_id)
    assert events[0][0] == len(view["history"])
    assert await stack.stock(sku) == {"WH-SHA": (before["WH-SHA"][0] - 2, 0)}
    payments = await stack.sql(
        "select status, captured from payments where order_id=:o", o=order_id
    )
    assert payments == [("captured", Decimal("33.90"))]

    # The gateway captured exactly once.
    ledger = (await stack.payment.get("/_admin/ledger")).json()
    auths = [a for a in ledger["authorizations"] if a["order_id"] == order_id]
    assert len(auths) == 1
    assert [Decimal(c["amount"]) for c in auths[0]["captures"]] == [Decimal("33.90")]

    # Completed orders are read from PostgreSQL and listed for the customer.
    listed = (await stack.api.get("/customers/C-1001/orders", params={"limit": 200})).json()
    assert order_id in [o["order_id"] for o in listed["items"]]
