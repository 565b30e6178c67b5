"""The delivery option: express costs the country's express fee, is refused where not offered,
survives edits, and the carrier is told the service level."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.integration.helpers import order_body, place, wait_status

# The seeded express fees: CN 15.00, NL 19.50; other countries ('**') have none.
CN_EXPRESS = "15.00"
NL_EXPRESS = "19.50"


async def _carrier_bookings(stack: Any, reference: str) -> list[dict[str, Any]]:
    """The carrier stand-in's shipments booked under an order, parcel or merge number."""
    state = (await stack.carrier.get("/_admin/state")).json()["shipments"]
    return [s for s in state if s["reference"] == reference]


async def test_express_order_is_priced_shipped_and_shown_as_express(make_stack) -> None:
    stack = await make_stack()
    # 120.00 of goods: above CN's free-shipping threshold, which never waives express.
    sku = await stack.add_product({"WH-SHA": 5}, price="60.00")
    order = await place(stack.api, order_body([(sku, 2)], delivery="express"))
    oid = order["order_id"]
    assert order["delivery"] == "express"
    assert order["totals"]["shipping"] == CN_EXPRESS
    # CN tax is 13% of goods and shipping alike.
    assert order["totals"]["tax"] == "17.55" and order["totals"]["total"] == "152.55"

    view = await wait_status(stack.api, oid, "COMPLETED", 60)
    assert view["delivery"] == "express" and view["totals"]["shipping"] == CN_EXPRESS

    (booking,) = await _carrier_bookings(stack, oid)
    assert booking["service"] == "express"
    shipment = await stack.carrier.get(f"/v1/shipments/{view['shipments'][0]['shipment_id']}")
    assert shipment.json()["service"] == "express"

    items = (await stack.api.get("/orders", params={"q": oid})).json()["items"]
    assert [(i["order_id"], i["delivery"]) for i in items] == [(oid, "express")]
    page = await stack.api.get(f"/orders/{oid}/documents/confirmation", params={"format": "html"})
    assert "Express delivery" in page.text and "Shipping (express)" in page.text


async def test_standard_is_the_default_and_books_standard(make_stack) -> None:
    stack = await make_stack()
    order = await place(stack.api, order_body())
    assert order["delivery"] == "standard" and order["totals"]["shipping"] == "5.00"
    await wait_status(stack.api, order["order_id"], "COMPLETED", 60)
    (booking,) = await _carrier_bookings(stack, order["order_id"])
    assert booking["service"] == "standard"


async def test_express_where_not_offered_is_refused_and_changes_nothing(make_stack) -> None:
    stack = await make_stack()
    customer = f"C-X{uuid.uuid4().hex[:8]}"
    key = f"express-{uuid.uuid4().hex}"
    body = order_body(customer_id=customer, country="US", delivery="express")
    r = await stack.api.post("/orders", json=body, headers={"Idempotency-Key": key})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "delivery_not_offered"
    assert error["message"] == "express delivery is not offered to US"
    assert error["details"] == {"delivery": "express", "country": "US"}
    assert await stack.sql("select 1 from orders where customer_id = :c", c=customer) == []
    assert await stack.sql("select 1 from order_intake where customer_id = :c", c=customer) == []

    unknown = await stack.api.post("/orders", json=order_body(delivery="overnight"))
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "invalid_request"

    # The key was never claimed: the same customer may still order at standard delivery.
    body["delivery"] = "standard"
    r = await stack.api.post("/orders", json=body, headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.text
    assert r.json()["totals"]["shipping"] == "15.00"  # the flat fee of the other countries


async def test_edits_of_an_express_order_keep_express(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    sku = await stack.add_product({"WH-SHA": 20}, price="10.00")
    order = await place(stack.api, order_body([(sku, 1)], delivery="express"))
    oid = order["order_id"]
    await wait_status(stack.api, oid, "CONFIRMED")

    # 120.00 of goods would ship free at standard; express keeps its fee.
    r = await stack.api.patch(f"/orders/{oid}", json={"lines": [{"sku": sku, "quantity": 12}]})
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["delivery"] == "express"
    assert (view["totals"]["subtotal"], view["totals"]["shipping"]) == ("120.00", CN_EXPRESS)

    # A country without express is refused before stock or payment is touched.
    payments = view["payments"]
    abroad = {**order_body(country="US")["ship_to"], "city": "Boston", "postal_code": "02108"}
    r = await stack.api.patch(f"/orders/{oid}", json={"ship_to": abroad})
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "delivery_not_offered"
    view = (await stack.api.get(f"/orders/{oid}")).json()
    assert view["ship_to"]["country"] == "CN" and view["totals"]["shipping"] == CN_EXPRESS
    assert view["payments"] == payments
    assert await stack.stock(sku) == {"WH-SHA": (20, 12)}
    refused = [h for h in view["history"] if h["kind"] == "edit_refused"]
    assert [h["detail"].split(":")[0] for h in refused] == ["delivery_not_offered"]

    # A country that offers express reprices at its own express fee.
    dutch = {**order_body(country="NL")["ship_to"], "city": "Rotterdam", "postal_code": "3011"}
    r = await stack.api.patch(f"/orders/{oid}", json={"ship_to": dutch})
    assert r.status_code == 200, r.text
    assert r.json()["totals"]["shipping"] == NL_EXPRESS and r.json()["delivery"] == "express"

    r = await stack.api.post(f"/orders/{oid}/cancel", json={"reason": "test over"})
    assert r.status_code == 200, r.text


async def test_every_parcel_of_a_split_express_order_ships_express(make_stack) -> None:
    stack = await make_stack()
    tea = await stack.add_product({"WH-SHA": 5}, price="10.00")
    cups = await stack.add_product({"WH-RTM": 5}, price="30.00")
    order = await place(stack.api, order_body([(tea, 2), (cups, 1)], delivery="express"))
    oid = order["order_id"]
    view = await wait_status(stack.api, oid, "COMPLETED", 60)
    parcels = [s["shipment_no"] for s in view["shipments"]]
    assert len(parcels) == 2
    for no in parcels:
        (booking,) = await _carrier_bookings(stack, no)
        assert booking["service"] == "express"


async def test_a_merged_parcel_ships_express_when_one_order_paid_for_it(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=5)
    skus = [await stack.add_product({"WH-SHA": 5}, price="10.00") for _ in range(2)]
    express = await place(stack.api, order_body([(skus[0], 1)], delivery="express"))
    standard = await place(stack.api, order_body([(skus[1], 1)]))
    ids = [express["order_id"], standard["order_id"]]
    await asyncio.gather(*(wait_status(stack.api, oid, "CONFIRMED") for oid in ids))
    r = await stack.api.post("/merges", json={"order_ids": ids})
    assert r.status_code == 201, r.text
    cid = r.json()["consolidation_id"]
    views = await asyncio.gather(*(wait_status(stack.api, oid, "COMPLETED", 60) for oid in ids))
    assert [v["delivery"] for v in views] == ["express", "standard"]
    (booking,) = await _carrier_bookings(stack, cid)
    assert booking["service"] == "express"
