"""Related orders linked both ways: reorder-of, and the customer's other open orders (§6)."""

from __future__ import annotations

import uuid

from tests.integration.helpers import order_body, place, wait_status


async def test_reorder_and_open_orders_are_linked_both_ways(make_stack) -> None:
    quick = await make_stack()
    slow = await make_stack(warehouse_release_seconds=3600)
    customer = f"C-REL-{uuid.uuid4().hex[:6]}"
    first = await place(quick.api, order_body([("SKU-TEA-002", 3)], customer_id=customer))
    await wait_status(quick.api, first["order_id"], "COMPLETED")

    r = await slow.api.post(
        f"/orders/{first['order_id']}/reorder",
        json={"payment": {"method": "card", "token": "tok_ok"}},
        headers={"Idempotency-Key": f"reorder-{customer}"},
    )
    assert r.status_code == 201, r.text
    again = r.json()
    assert [(ln["sku"], ln["quantity"]) for ln in again["lines"]] == [("SKU-TEA-002", 3)]
    assert {"type": "reorder_of", "id": first["order_id"]} in again["related"]
    # The same request twice is the same reorder.
    r = await slow.api.post(
        f"/orders/{first['order_id']}/reorder",
        json={"payment": {"method": "card", "token": "tok_ok"}},
        headers={"Idempotency-Key": f"reorder-{customer}"},
    )
    assert r.status_code == 200 and r.json()["order_id"] == again["order_id"]

    other = await place(slow.api, order_body([("SKU-CUP-001", 1)], customer_id=customer))
    await wait_status(slow.api, again["order_id"], "CONFIRMED")
    await wait_status(slow.api, other["order_id"], "CONFIRMED")

    old = (await quick.api.get(f"/orders/{first['order_id']}")).json()
    assert {"type": "reordered_as", "id": again["order_id"]} in old["related"]
    new = (await slow.api.get(f"/orders/{again['order_id']}")).json()
    assert {"type": "reorder_of", "id": first["order_id"]} in new["related"]
    assert {"type": "same_customer_open", "id": other["order_id"]} in new["related"]
    # A completed order is not "open": it is not offered as one.
    assert {"type": "same_customer_open", "id": first["order_id"]} not in new["related"]

    bad = await slow.api.post(
        f"/orders/{first['order_id']}/reorder", json={"payment": {"method": "exchange_credit"}}
    )
    assert bad.status_code == 422
    missing = await slow.api.post(
        "/orders/SO-20260101-00000000/reorder", json={"payment": {"method": "invoice"}}
    )
    assert missing.status_code == 404
    for oid in (again["order_id"], other["order_id"]):
        await slow.api.post(f"/orders/{oid}/cancel", json={})
