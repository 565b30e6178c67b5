"""Split orders: one child ShipmentWorkflow per parcel, combined status, per-parcel capture (§4)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from tests.integration.helpers import TERMINAL, eventually, order_body, place, wait_status
from workflows import contract as c

HOLD = "11111"  # the carrier stand-in holds these parcels until told to move


async def _split_order(stack: Any, postal_code: str = "200001") -> tuple[str, str, str]:
    """An order for one SKU only Shanghai has and one only Rotterdam has: two parcels."""
    tea = await stack.add_product({"WH-SHA": 5}, price="10.00")
    cups = await stack.add_product({"WH-RTM": 5}, price="30.00")
    order = await place(stack.api, order_body([(tea, 2), (cups, 1)], postal_code=postal_code))
    return order["order_id"], tea, cups


async def _parcels_booked(stack: Any, oid: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        return (await stack.api.get(f"/orders/{oid}")).json()  # type: ignore[no-any-return]

    return await eventually(  # type: ignore[no-any-return]
        probe,
        lambda v: len(v["shipments"]) == 2 and all(s["tracking_number"] for s in v["shipments"]),
    )


async def _advance(stack: Any, shipment_id: str, times: int = 1) -> None:
    for _ in range(times):
        r = await stack.carrier.post(f"/_admin/shipments/{shipment_id}/advance")
        assert r.status_code == 200, r.text


def _auth(ledger: dict[str, Any], oid: str) -> dict[str, Any]:
    auths = [a for a in ledger["authorizations"] if a["order_id"] == oid]
    assert len(auths) == 1, auths
    return auths[0]  # type: ignore[no-any-return]


async def test_two_warehouse_order_ships_in_two_parcels_and_completes(make_stack) -> None:
    stack = await make_stack()
    oid, tea, cups = await _split_order(stack)
    view = await wait_status(stack.api, oid, "COMPLETED", 60)

    assert view["allocation"] and "2 parcels" in view["allocation"][0]
    parcels = {s["warehouse"]: s for s in view["shipments"]}
    assert set(parcels) == {"WH-SHA", "WH-RTM"}
    assert parcels["WH-SHA"]["lines"] == {tea: 2} and parcels["WH-RTM"]["lines"] == {cups: 1}
    assert all(s["status"] == "delivered" and s["tracking_number"] for s in parcels.values())
    shares = [Decimal(s["amount"]) for s in parcels.values()]
    total = Decimal(view["totals"]["total"])
    assert sum(shares) == total and all(x > 0 for x in shares)

    kinds = [h["kind"] for h in view["history"]]
    statuses = [k for k in kinds if k.startswith("status:")]
    for expected in ("status:PICKING", "status:PARTIALLY_SHIPPED", "status:DELIVERED"):
        assert expected in statuses, statuses
    assert statuses.index("status:PARTIALLY_SHIPPED") < statuses.index("status:DELIVERED")
    assert kinds.count("parcel_left") == 2 and kinds.count("parcel_started") == 2
    # Every tracking step of every parcel is in the order's history, not only those that move it.
    tracked = [h["detail"] for h in view["history"] if h["kind"] == "parcel_tracking"]
    for s in view["shipments"]:
        steps = [d for d in tracked if d.startswith(s["shipment_no"])]
        assert any("OUT_FOR_DELIVERY" in d for d in steps), (s["shipment_no"], tracked)
    related = [r["id"] for r in view["related"] if r["type"] == "shipment"]
    assert sorted(related) == sorted(s["shipment_no"] for s in view["shipments"])

    # Each parcel captured its own share; together exactly the total, nothing left held.
    auth = _auth((await stack.payment.get("/_admin/ledger")).json(), oid)
    assert sorted(Decimal(x["amount"]) for x in auth["captures"]) == sorted(shares)
    assert view["payments"][0]["status"] == "captured"
    assert Decimal(view["payments"][0]["captured"]) == total
    assert await stack.stock(tea) == {"WH-SHA": (3, 0)}
    assert await stack.stock(cups) == {"WH-RTM": (4, 0)}

    # The children are real workflows, linked to the order in the Temporal UI.
    for no in related:
        handle = stack.client.get_workflow_handle(c.shipment_workflow_id(no))
        desc = await handle.describe()
        assert desc.parent_id == c.order_workflow_id(oid)
        assert desc.typed_search_attributes.get(c.SA_PARENT) == oid
        assert (await handle.result())["status"] == "delivered"
    await stack.save_history(oid, "order_split_v5")
    await stack.save_history(related[0], "shipment_delivered_v2")


async def _history(stack, oid: str, kind: str) -> list[str]:
    view = (await stack.api.get(f"/orders/{oid}")).json()
    return [h["detail"] for h in view["history"] if h["kind"] == kind]


async def test_address_change_reaches_parcels_and_partial_cancel(make_stack) -> None:
    stack = await make_stack()
    oid, tea, cups = await _split_order(stack, postal_code=HOLD)
    view = await _parcels_booked(stack, oid)
    await wait_status(stack.api, oid, "PACKED")
    by_wh = {s["warehouse"]: s for s in view["shipments"]}

    moved = {**order_body(postal_code=HOLD)["ship_to"], "line1": "8 Huaihai Rd"}
    r = await stack.api.patch(f"/orders/{oid}", json={"ship_to": moved})
    assert r.status_code == 200, r.text
    view = r.json()
    # Both parcels were rebooked to the new address; the old bookings are cancelled.
    assert {s["tracking_number"] for s in view["shipments"]}.isdisjoint(
        {s["tracking_number"] for s in by_wh.values()}
    )
    state = (await stack.carrier.get("/_admin/state")).json()["shipments"]
    ours = [s for s in state if s["reference"].startswith("SH-") and oid[3:] in s["reference"]]
    live = [s for s in ours if s["status"] != "cancelled"]
    assert len(ours) == 4 and len(live) == 2
    assert all(s["ship_to"]["line1"] == "8 Huaihai Rd" for s in live)
    # The history names each booking the rebooking replaced, and what the address was.
    replaced = await eventually(
        lambda: _history(stack, oid, "parcel_booking_cancelled"), lambda h: len(h) == 2
    )
    old_tracking = {s["tracking_number"] for s in by_wh.values()}
    assert {d.split("tracking ")[1].split(":")[0] for d in replaced} == old_tracking
    edit = [h for h in view["history"] if h["kind"] == "modified"][-1]["detail"]
    assert "address: " in edit and "1 Nanjing Rd" in edit and "8 Huaihai Rd" in edit

    # The Shanghai parcel leaves; the order is partly shipped and its share captured.
    sha = next(s for s in view["shipments"] if s["warehouse"] == "WH-SHA")
    await _advance(stack, sha["shipment_id"])
    view = await wait_status(stack.api, oid, "PARTIALLY_SHIPPED")
    assert view["payments"][0]["status"] == "partially_captured"

    # A second address change reaches only the parcel that has not left.
    again = {**moved, "line1": "9 Huaihai Rd"}
    r = await stack.api.patch(f"/orders/{oid}", json={"ship_to": again})
    assert r.status_code == 200, r.text
    state = (await stack.carrier.get("/_admin/state")).json()["shipments"]
    by_id = {s["shipment_id"]: s for s in state}
    assert by_id[sha["shipment_id"]]["ship_to"]["line1"] == "8 Huaihai Rd"

    # Cancel: the unshipped parcel is stopped, the shipped one goes on.
    r = await stack.api.post(f"/orders/{oid}/cancel", json={"reason": "cups not needed"})
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["status"] == "SHIPPED"
    rtm = next(s for s in view["shipments"] if s["warehouse"] == "WH-RTM")
    assert rtm["status"] == "cancelled"
    assert await stack.stock(cups) == {"WH-RTM": (5, 0)}
    assert await stack.stock(tea) == {"WH-SHA": (3, 0)}
    # The cancelled parcel's share of the authorization is released at once.
    auth = _auth((await stack.payment.get("/_admin/ledger")).json(), oid)
    assert Decimal(auth["released_amount"]) == Decimal(rtm["amount"])
    assert view["payments"][0]["status"] == "captured"

    # Nothing is left to cancel once every remaining parcel has left.
    r = await stack.api.post(f"/orders/{oid}/cancel", json={})
    assert r.status_code == 409 and r.json()["error"]["code"] == "cancel_locked_after_shipping"

    await _advance(stack, sha["shipment_id"], 3)
    view = await wait_status(stack.api, oid, "COMPLETED", 60)
    auth = _auth((await stack.payment.get("/_admin/ledger")).json(), oid)
    share = Decimal(sha["amount"])
    assert [Decimal(x["amount"]) for x in auth["captures"]] == [share]
    assert Decimal(auth["released_amount"]) == Decimal(view["totals"]["total"]) - share
    kinds = [h["kind"] for h in view["history"]]
    assert "parcels_cancelled" in kinds and "payment_released" in kinds
    await stack.save_history(oid, "order_split_partly_cancelled_v4")


async def test_cancel_before_any_parcel_ships_cancels_all(make_stack) -> None:
    stack = await make_stack()
    oid, tea, cups = await _split_order(stack, postal_code=HOLD)
    await _parcels_booked(stack, oid)
    r = await stack.api.post(f"/orders/{oid}/cancel", json={"reason": "changed my mind"})
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["status"] == "CANCELLED"
    assert {s["status"] for s in view["shipments"]} == {"cancelled"}
    assert await stack.stock(tea) == {"WH-SHA": (5, 0)}
    assert await stack.stock(cups) == {"WH-RTM": (5, 0)}
    final = await wait_status(stack.api, oid, "CANCELLED")
    assert final["payments"][0]["status"] == "voided"
    auth = _auth((await stack.payment.get("/_admin/ledger")).json(), oid)
    assert auth["status"] == "voided" and auth["captures"] == []
    state = (await stack.carrier.get("/_admin/state")).json()["shipments"]
    ours = [s for s in state if oid[3:] in s["reference"]]
    assert len(ours) == 2 and {s["status"] for s in ours} == {"cancelled"}


async def test_split_order_finishes_after_its_worker_restarts(make_stack) -> None:
    stack = await make_stack()
    oid, _, _ = await _split_order(stack, postal_code=HOLD)
    view = await _parcels_booked(stack, oid)

    await stack.stop_worker()
    # The carrier moves both parcels to the door while no worker runs.
    await asyncio.gather(*(_advance(stack, s["shipment_id"], 4) for s in view["shipments"]))
    await stack.start_worker()
    final = await wait_status(stack.api, oid, TERMINAL, 60)
    assert final["status"] == "COMPLETED"
    auth = _auth((await stack.payment.get("/_admin/ledger")).json(), oid)
    assert len(auth["captures"]) == 2
    assert sum(Decimal(x["amount"]) for x in auth["captures"]) == Decimal(final["totals"]["total"])


async def _partial_order(stack: Any) -> tuple[str, str, str]:
    """Tea in stock; only one of three cups: the customer takes what there is now."""
    tea = await stack.add_product({"WH-SHA": 5}, price="10.00")
    cups = await stack.add_product({"WH-SHA": 1}, price="30.00")
    body = order_body([(tea, 2), (cups, 3)], allow_partial_shipment=True)
    order = await place(stack.api, body)
    return order["order_id"], tea, cups


async def test_part_ships_now_and_the_rest_after_a_restock(make_stack) -> None:
    stack = await make_stack()
    oid, tea, cups = await _partial_order(stack)

    async def probe() -> dict[str, Any]:
        return (await stack.api.get(f"/orders/{oid}")).json()  # type: ignore[no-any-return]

    view = await eventually(
        probe,
        lambda v: (
            v["status"] == "PARTIALLY_SHIPPED"
            and any(s["status"] == "delivered" for s in v["shipments"])
        ),
    )
    first, rest = sorted(view["shipments"], key=lambda s: s["batch"])
    assert first["lines"] == {tea: 2, cups: 1} and first["status"] == "delivered"
    assert rest["lines"] == {cups: 2} and rest["status"] == "waiting_stock"
    assert "restock" in view["allocation"][0]
    assert view["payments"][0]["status"] == "partially_captured"
    messages = (await stack.api.get(f"/orders/{oid}/messages")).json()["items"]
    assert "backorder_delay" in [m["kind"] for m in messages]

    r = await stack.api.post(
        "/inventory/restock", json={"sku": cups, "warehouse_id": "WH-RTM", "quantity": 4}
    )
    assert r.status_code == 200, r.text
    assert oid in r.json()["backorders_served"]
    view = await wait_status(stack.api, oid, "COMPLETED", 60)
    parcels = sorted(view["shipments"], key=lambda s: s["batch"])
    assert [(p["warehouse"], p["lines"], p["status"]) for p in parcels] == [
        ("WH-SHA", {tea: 2, cups: 1}, "delivered"),
        ("WH-RTM", {cups: 2}, "delivered"),
    ]
    auth = _auth((await stack.payment.get("/_admin/ledger")).json(), oid)
    captured = sorted(Decimal(x["amount"]) for x in auth["captures"])
    assert sum(captured) == Decimal(view["totals"]["total"]) and len(captured) == 2
    assert await stack.stock(cups) == {"WH-SHA": (0, 0), "WH-RTM": (2, 0)}
    await stack.save_history(oid, "order_part_now_part_later_v3")


async def test_the_rest_is_cancelled_when_no_restock_comes(make_stack) -> None:
    stack = await make_stack(backorder_timeout_seconds=1.5)
    oid, _, cups = await _partial_order(stack)
    view = await wait_status(stack.api, oid, "COMPLETED", 60)
    first, rest = sorted(view["shipments"], key=lambda s: s["batch"])
    assert first["status"] == "delivered" and rest["status"] == "cancelled"
    auth = _auth((await stack.payment.get("/_admin/ledger")).json(), oid)
    assert [Decimal(x["amount"]) for x in auth["captures"]] == [Decimal(first["amount"])]
    assert Decimal(auth["released_amount"]) == Decimal(rest["amount"])
    kinds = [m["kind"] for m in (await stack.api.get(f"/orders/{oid}/messages")).json()["items"]]
    assert "parcels_cancelled" in kinds
    backorders = await stack.sql("select status from backorders where order_id=:o", o=oid)
    assert backorders == [("closed",)]
    assert await stack.stock(cups) == {"WH-SHA": (0, 0)}


async def test_staff_split_an_order_by_hand_before_picking(make_stack) -> None:
    # Long enough for the requests below to land before picking starts.
    stack = await make_stack(warehouse_release_seconds=6)
    tea = await stack.add_product({"WH-SHA": 5, "WH-RTM": 5}, price="10.00")
    cups = await stack.add_product({"WH-SHA": 5}, price="30.00")
    order = await place(stack.api, order_body([(tea, 3), (cups, 1)]))
    oid = order["order_id"]
    view = await wait_status(stack.api, oid, "CONFIRMED")
    assert view["warehouse"] == "WH-SHA"  # one warehouse has everything: one parcel

    refusals = [
        ({"parcels": [{"lines": [{"sku": tea, "quantity": 3}]}]}, 422, "invalid_request"),
        (
            {
                "parcels": [
                    {"lines": [{"sku": tea, "quantity": 2}]},
                    {"lines": [{"sku": cups, "quantity": 1}]},
                ]
            },
            409,
            "split_lines_mismatch",
        ),
        (
            {
                "parcels": [
                    {"lines": [{"sku": tea, "quantity": 3}]},
                    {"warehouse_id": "WH-RTM", "lines": [{"sku": cups, "quantity": 1}]},
                ]
            },
            409,
            "insufficient_stock",
        ),
        (
            {
                "parcels": [
                    {"lines": [{"sku": tea, "quantity": 3}]},
                    {"warehouse_id": "WH-NOPE", "lines": [{"sku": cups, "quantity": 1}]},
                ]
            },
            422,
            "unknown_warehouse",
        ),
    ]
    for body, status, code in refusals:
        r = await stack.api.post(f"/orders/{oid}/split", json=body)
        assert r.status_code == status, r.text
        assert r.json()["error"]["code"] == code, r.text
    assert await stack.stock(tea) == {"WH-SHA": (5, 3), "WH-RTM": (5, 0)}

    body = {
        "parcels": [
            {"warehouse_id": "WH-RTM", "lines": [{"sku": tea, "quantity": 2}]},
            {"lines": [{"sku": tea, "quantity": 1}, {"sku": cups, "quantity": 1}]},
        ],
        "note": "ship the tea early",
    }
    r = await stack.api.post(f"/orders/{oid}/split", json=body)
    assert r.status_code == 200, r.text
    assert any("by hand" in reason for reason in r.json()["allocation"])
    assert await stack.stock(tea) == {"WH-SHA": (5, 1), "WH-RTM": (5, 2)}
    assert await stack.stock(cups) == {"WH-SHA": (5, 1)}

    # Once released to the warehouse the two parcels run as two children.
    view = await wait_status(stack.api, oid, "COMPLETED", 60)
    parcels = sorted(view["shipments"], key=lambda s: s["batch"])
    assert [(p["warehouse"], p["lines"], p["status"]) for p in parcels] == [
        ("WH-RTM", {tea: 2}, "delivered"),
        ("WH-SHA", {tea: 1, cups: 1}, "delivered"),
    ]
    kinds = [h["kind"] for h in view["history"]]
    assert kinds.count("split_refused") == 2 and "split_by_hand" in kinds
    assert await stack.stock(tea) == {"WH-SHA": (4, 0), "WH-RTM": (3, 0)}


async def test_damaged_parcels_of_a_split_order_are_refunded_and_reshipped(make_stack) -> None:
    stack = await make_stack()
    oid, tea, cups = await _split_order(stack, postal_code="22222")  # the carrier damages them

    async def probe() -> dict[str, Any]:
        return (await stack.api.get(f"/orders/{oid}")).json()  # type: ignore[no-any-return]

    def damaged(n: int):  # type: ignore[no-untyped-def]
        return lambda v: sum(1 for s in v["shipments"] if s["status"] == "damaged") == n

    view = await eventually(probe, damaged(2))
    assert view["open_exception"]
    captured = {s["shipment_no"]: Decimal(s["captured"]) for s in view["shipments"]}

    act = f"/orders/{oid}/exception-actions"
    r = await stack.api.post(act, json={"action": "refund", "note": "broken cups"})
    assert r.status_code == 200, r.text
    first_refunded = [s for s in r.json()["shipments"] if s["status"] == "refunded"]
    assert len(first_refunded) == 1 and r.json()["open_exception"]  # the other is still open

    r = await stack.api.post(act, json={"action": "reship", "note": "send it again"})
    assert r.status_code == 200, r.text
    view = r.json()
    assert [s["status"] for s in view["shipments"]].count("reshipped") == 1
    new = view["shipments"][-1]
    assert new["batch"] == 3 and new["shipment_no"].endswith("-3")

    # The new parcel is damaged too (same address): refunding it ends the order.
    view = await eventually(probe, lambda v: v["shipments"][-1]["status"] == "damaged")
    r = await stack.api.post(act, json={"action": "refund"})
    assert r.status_code == 200, r.text
    view = await wait_status(stack.api, oid, "REFUNDED")
    auth = _auth((await stack.payment.get("/_admin/ledger")).json(), oid)
    assert sorted(Decimal(x["amount"]) for x in auth["refunds"]) == sorted(captured.values())
    assert sorted(Decimal(x["amount"]) for x in auth["captures"]) == sorted(captured.values())
    assert view["payments"][0]["status"] == "refunded"
    assert not view["open_exception"]
    # The reshipment took its own units off stock, a second time for its lines.
    sent_twice = new["lines"]
    assert await stack.stock(tea) == {"WH-SHA": (5 - 2 - sent_twice.get(tea, 0), 0)}
    assert await stack.stock(cups) == {"WH-RTM": (5 - 1 - sent_twice.get(cups, 0), 0)}
    await stack.save_history(oid, "order_split_refunded_v3")
