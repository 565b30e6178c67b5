"""A customer's whole picture in one call, staff notes and ratings (§6, §7)."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

from tests.integration.helpers import eventually, order_body, place, wait_status


async def test_the_whole_picture_of_a_customer(make_stack) -> None:
    quick = await make_stack()
    slow = await make_stack(after_sales_window_seconds=3600)
    customer = f"C-PIC-{uuid.uuid4().hex[:6]}"
    sku = await quick.add_product({"WH-SHA": 20}, price="12.40")

    done = await place(quick.api, order_body([(sku, 2)], customer_id=customer))
    declined = await place(
        quick.api,
        order_body([(sku, 1)], customer_id=customer, token="tok_decline", postal_code="200002"),
    )
    returned = await place(slow.api, order_body([(sku, 1)], customer_id=customer))
    await asyncio.gather(
        wait_status(quick.api, done["order_id"], "COMPLETED"),
        wait_status(quick.api, declined["order_id"], "AWAITING_PAYMENT"),
        wait_status(slow.api, returned["order_id"], "DELIVERED"),
    )
    r = await slow.api.post(
        f"/orders/{returned['order_id']}/returns",
        json={"lines": [{"sku": sku, "quantity": 1}], "reason": "too small"},
    )
    assert r.status_code == 200, r.text
    await wait_status(slow.api, returned["order_id"], "RETURN_REQUESTED")

    r = await quick.api.post(
        f"/customers/{customer}/notes",
        json={"text": "Called about the declined card", "order_id": declined["order_id"]},
    )
    assert r.status_code == 201, r.text
    r = await quick.api.post(
        f"/orders/{done['order_id']}/feedback", json={"rating": 5, "comment": "lovely tea"}
    )
    assert r.status_code == 201, r.text
    r = await quick.api.post(f"/orders/{declined['order_id']}/feedback", json={"rating": 1})
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_delivered"
    for bad in ({"rating": 0}, {"rating": 6}, {"rating": 3, "extra": 1}):
        r = await quick.api.post(f"/orders/{done['order_id']}/feedback", json=bad)
        assert r.status_code == 422

    async def picture() -> dict:  # type: ignore[type-arg]
        r = await quick.api.get(f"/customers/{customer}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    # Emails reach the outbox as the orders move: wait until the log has the delivered one.
    p = await eventually(
        picture,
        lambda p: any(e.get("kind") == "delivered" for e in p["communication"]),
    )
    assert p["profile"]["id"] == customer and p["profile"]["email"] == "li@example.com"
    statuses = {o["order_id"]: o["status"] for o in p["orders"]}
    assert statuses == {
        done["order_id"]: "COMPLETED",
        declined["order_id"]: "AWAITING_PAYMENT",
        returned["order_id"]: "RETURN_REQUESTED",
    }
    assert sorted(a["postal_code"] for a in p["addresses"]) == ["200001", "200002"]
    assert [r["order_id"] for r in p["open_returns"]] == [returned["order_id"]]
    assert sorted(p["open_orders"]) == sorted([declined["order_id"], returned["order_id"]])
    totals = {o["order_id"]: Decimal(o["total"]["amount"]) for o in p["orders"]}
    value = totals[done["order_id"]] + totals[returned["order_id"]]
    assert p["lifetime_value"] == [{"currency": "USD", "amount": str(value)}]
    assert p["loyalty_points"] == int(totals[done["order_id"]])
    kinds = [(e["type"], e.get("kind")) for e in p["communication"]]
    assert ("email", "payment_problem") in kinds and ("email", "confirmed") in kinds
    assert ("note", None) in kinds
    assert not [k for t, k in kinds if k and k.startswith("alert")]
    times = [e["at"] for e in p["communication"]]
    assert times == sorted(times)
    assert p["feedback"] == [
        {
            "order_id": done["order_id"],
            "rating": 5,
            "comment": "lovely tea",
            "at": p["feedback"][0]["at"],
        }
    ]

    missing = await quick.api.get("/customers/C-NOBODY-0")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "customer_not_found"
    r = await quick.api.post("/customers/C-NOBODY-0/notes", json={"text": "x"})
    assert r.status_code == 404
    r = await quick.api.post(
        f"/customers/{customer}/notes", json={"text": "x", "order_id": "SO-20260101-00000000"}
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_order"
