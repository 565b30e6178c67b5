"""Suppliers, purchase orders and receipts that wake backorders; safety stock (§7)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.integration.helpers import eventually, order_body, place, wait_status
from workflows.purchase_contract import purchase_order_workflow_id


async def add_supplier(stack: Any, *offers: tuple[str, int], lead_time_days: int = 3) -> str:
    supplier = f"SUP-{uuid.uuid4().hex[:8]}"
    r = await stack.api.put(
        f"/suppliers/{supplier}",
        json={
            "name": f"Supplier {supplier}",
            "email": f"{supplier.lower()}@suppliers.example",
            "lead_time_days": lead_time_days,
            "products": [
                {"sku": sku, "unit_cost": "4.00", "currency": "USD", "pack_size": pack}
                for sku, pack in offers
            ],
        },
    )
    assert r.status_code == 200, r.text
    return supplier


async def new_po(stack: Any, supplier: str, lines: list[tuple[str, int]], **headers: str) -> Any:
    return await stack.api.post(
        "/purchase-orders",
        json={
            "supplier_id": supplier,
            "warehouse_id": "WH-SHA",
            "lines": [{"sku": s, "quantity": q} for s, q in lines],
        },
        headers=headers,
    )


async def receive(stack: Any, po_id: str, lines: list[tuple[str, int]], key: str) -> Any:
    return await stack.api.post(
        f"/purchase-orders/{po_id}/receipts",
        json={"lines": [{"sku": s, "quantity": q} for s, q in lines]},
        headers={"Idempotency-Key": key},
    )


async def test_receipt_adds_stock_and_wakes_a_backorder(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    sku = await stack.add_product({"WH-SHA": 0})
    supplier = await add_supplier(stack, (sku, 5))
    order = await place(stack.api, order_body([(sku, 3)]))
    oid = order["order_id"]
    await wait_status(stack.api, oid, "BACKORDERED")

    key = uuid.uuid4().hex
    r = await new_po(stack, supplier, [(sku, 10)], **{"Idempotency-Key": key})
    assert r.status_code == 201, r.text
    po = r.json()
    po_id = po["po_id"]
    assert po["status"] == "SENT" and po["total_cost"] == "40.00"
    again = await new_po(stack, supplier, [(sku, 10)], **{"Idempotency-Key": key})
    assert again.status_code == 201 and again.json()["po_id"] == po_id

    sent = await eventually(lambda: stack.emails(po_id), lambda m: len(m) == 1)
    assert sent[0]["to"] == f"{supplier.lower()}@suppliers.example"
    assert po_id in sent[0]["subject"] and sku in sent[0]["text"]
    level = (await stack.api.get(f"/inventory/{sku}")).json()
    assert (level["on_order"], level["backordered"], level["available"]) == (10, 3, 0)

    r = await stack.api.post(
        f"/purchase-orders/{po_id}/confirm",
        json={"supplier_reference": "SO-998", "expected_at": "2030-01-05T00:00:00Z"},
    )
    assert r.status_code == 200 and r.json()["status"] == "CONFIRMED", r.text
    r = await stack.api.post(f"/purchase-orders/{po_id}/confirm", json={})
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_confirmed"

    r = await receive(stack, po_id, [(sku, 4)], "delivery-1")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "PARTLY_RECEIVED"
    assert r.json()["receipts"][0]["backorders_served"] == [oid]
    # The purchase order's own signal wakes the order (its recheck timer is an hour away).
    await wait_status(stack.api, oid, "CONFIRMED")
    # The same delivery posted twice is booked once.
    r = await receive(stack, po_id, [(sku, 4)], "delivery-1")
    assert r.status_code == 200 and len(r.json()["receipts"]) == 1
    assert await stack.stock(sku) == {"WH-SHA": (4, 3)}

    # A refusal is the answer kept under its key: each corrected request takes a new one.
    r = await receive(stack, po_id, [(sku, 7)], "delivery-2-over")
    assert r.status_code == 409 and r.json()["error"]["code"] == "over_receipt"
    r = await receive(stack, po_id, [("SKU-TEA-001", 1)], "delivery-2-wrong")
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_on_purchase_order"

    r = await receive(stack, po_id, [(sku, 6)], "delivery-2")
    assert r.status_code == 200 and r.json()["status"] == "RECEIVED", r.text
    handle = stack.client.get_workflow_handle(purchase_order_workflow_id(po_id))
    assert (await handle.result())["status"] == "RECEIVED"
    assert await stack.stock(sku) == {"WH-SHA": (10, 3)}
    got = await stack.sql("select sum(quantity) from stock_receipts where po_id=:p", p=po_id)
    assert got[0][0] == 10
    level = (await stack.api.get(f"/inventory/{sku}")).json()
    assert (level["on_order"], level["backordered"], level["available"]) == (0, 0, 7)
    stored = (await stack.api.get(f"/purchase-orders/{po_id}")).json()
    assert [h["kind"] for h in stored["history"]] == ["sent", "confirmed", "received", "received"]
    listed = (await stack.api.get("/purchase-orders", params={"supplier_id": supplier})).json()
    assert [p["po_id"] for p in listed["items"]] == [po_id]

    r = await stack.api.post(f"/purchase-orders/{po_id}/cancel", json={})
    assert r.status_code == 409
    await stack.save_history(po_id, "purchase_order_received_v2")
    await stack.api.post(f"/orders/{oid}/cancel", json={})


async def test_cancel_close_short_and_confirmation_reminder(make_stack) -> None:
    stack = await make_stack(po_confirm_reminder_seconds=1)
    sku = await stack.add_product({"WH-SHA": 0})
    supplier = await add_supplier(stack, (sku, 1))

    first = (await new_po(stack, supplier, [(sku, 5)])).json()["po_id"]
    mails = await eventually(lambda: stack.emails(first), lambda m: len(m) == 2)
    reminder = next(m for m in mails if "not confirmed" in m["subject"])
    assert reminder["to"] == stack.settings.staff_email
    r = await stack.api.post(f"/purchase-orders/{first}/cancel", json={"reason": "too late"})
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED", r.text
    mails = await eventually(lambda: stack.emails(first), lambda m: len(m) == 3)
    assert any("cancelled" in m["subject"] for m in mails)

    second = (await new_po(stack, supplier, [(sku, 5)])).json()["po_id"]
    assert (await receive(stack, second, [(sku, 2)], "part")).status_code == 200
    assert (await stack.api.get(f"/inventory/{sku}")).json()["on_order"] == 3
    r = await stack.api.post(f"/purchase-orders/{second}/cancel", json={})
    assert r.status_code == 200 and r.json()["status"] == "CLOSED", r.text
    level = (await stack.api.get(f"/inventory/{sku}")).json()
    assert (level["on_order"], level["available"]) == (0, 2)
    stored = (await stack.api.get(f"/purchase-orders/{second}")).json()
    assert stored["status"] == "CLOSED" and stored["lines"][0]["received"] == 2


async def test_safety_stock_alerts_and_replenishment(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    sku = await stack.add_product({"WH-SHA": 10})
    supplier = await add_supplier(stack, (sku, 6), lead_time_days=2)

    r = await stack.api.put(f"/inventory/{sku}/safety-stock", json={"safety_stock": 5})
    assert r.status_code == 200 and r.json()["low"] is False, r.text
    order = await place(stack.api, order_body([(sku, 6)]))
    await wait_status(stack.api, order["order_id"], "CONFIRMED")

    async def alerts() -> list[dict[str, Any]]:
        items = (await stack.api.get("/inventory/low-stock")).json()["items"]
        return [a for a in items if a["sku"] == sku]

    opened = await eventually(alerts, lambda a: len(a) == 1)
    assert (opened[0]["available"], opened[0]["safety_stock"]) == (4, 5)
    mail = await stack.sql(
        "select recipient, subject from outbox where key=:k", k=f"low-stock:{opened[0]['id']}"
    )
    assert mail == [("staff", f"[orderflow] low stock: {sku}")]

    r = await stack.api.get(
        "/inventory/replenishment", params={"sku": sku, "window_days": 7, "review_days": 7}
    )
    assert r.status_code == 200, r.text
    (plan,) = r.json()["items"]
    # 6 units in 7 days; reorder point ceil(6/7*2 + 5) = 7; target ceil(6/7*9 + 5) = 13;
    # position 4 -> 9 units, in packs of 6 -> 12.
    assert (plan["reorder_point"], plan["target"], plan["position"]) == (7, 13, 4)
    assert (plan["quantity"], plan["supplier_id"], plan["lead_time_days"]) == (12, supplier, 2)
    assert "packs of 6 = 12" in plan["explanation"]

    order_it = {"warehouse_id": "WH-SHA", "skus": [sku], "window_days": 7, "review_days": 7}
    r = await stack.api.post("/purchase-orders/from-replenishment", json=order_it)
    assert r.status_code == 201, r.text
    (po,) = r.json()["purchase_orders"]
    assert po["supplier"]["id"] == supplier and po["lines"][0]["ordered"] == 12
    # What is on order now counts in the position: asking again orders nothing more.
    r = await stack.api.post("/purchase-orders/from-replenishment", json=order_it)
    assert r.json() == {"purchase_orders": [], "without_supplier": []}

    r = await stack.api.post(
        "/inventory/restock", json={"sku": sku, "warehouse_id": "WH-SHA", "quantity": 5}
    )
    assert r.status_code == 200
    assert await alerts() == []
    history = (await stack.api.get("/inventory/low-stock", params={"all": "true"})).json()
    assert [a["resolved_at"] is not None for a in history["items"] if a["sku"] == sku] == [True]
    r = await stack.api.get(
        "/inventory/replenishment", params={"sku": sku, "window_days": 7, "review_days": 7}
    )
    assert r.json()["items"] == []
    await stack.api.post(f"/purchase-orders/{po['po_id']}/cancel", json={})
    await stack.api.post(f"/orders/{order['order_id']}/cancel", json={})


async def test_bad_supply_requests_change_nothing(make_stack) -> None:
    stack = await make_stack(start_worker=False)
    sku = await stack.add_product({"WH-SHA": 1})
    supplier = await add_supplier(stack, (sku, 1))
    api = stack.api

    async def code(r: Any) -> tuple[int, str]:
        return r.status_code, r.json()["error"]["code"]

    assert (
        await api.put(f"/inventory/{sku}/safety-stock", json={"safety_stock": -1})
    ).status_code == 422
    assert await code(await api.put("/inventory/NOPE/safety-stock", json={"safety_stock": 1})) == (
        404,
        "sku_not_found",
    )
    bad_supplier = {
        "name": "X",
        "email": "x@y.example",
        "lead_time_days": 1,
        "products": [{"sku": "NOPE", "unit_cost": "1.00", "currency": "USD"}],
    }
    assert await code(await api.put("/suppliers/SUP-BAD", json=bad_supplier)) == (
        422,
        "unknown_sku",
    )
    assert (await api.get("/suppliers/SUP-BAD")).status_code == 404
    assert await code(await new_po(stack, "SUP-NONE", [(sku, 1)])) == (422, "unknown_supplier")
    assert await code(await new_po(stack, supplier, [("SKU-TEA-001", 1)])) == (422, "not_supplied")
    assert (await new_po(stack, supplier, [(sku, 1), (sku, 2)])).status_code == 422
    assert (await new_po(stack, supplier, [(sku, 0)])).status_code == 422
    assert (await api.get("/purchase-orders/PO-NOPE")).status_code == 404
    assert (await api.post("/purchase-orders/PO-NOPE/cancel", json={})).status_code == 404
    assert (await api.get("/inventory/replenishment", params={"window_days": 0})).status_code == 422
    assert await stack.sql(
        "select count(*) from purchase_orders where supplier_id=:s", s=supplier
    ) == [(0,)]
