"""Merged shipments: a customer's open orders to one address ship as one parcel (§4)."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

from tests.integration.helpers import order_body, place, wait_status
from workflows import contract as c

# Orders wait this long before picking: the time staff have to merge them.
RELEASE = 5


async def _confirmed_orders(stack: Any, n: int, **body: Any) -> tuple[list[str], list[str]]:
    skus = [await stack.add_product({"WH-SHA": 10}, price=f"{10 * (i + 1)}.00") for i in range(n)]
    orders = [await place(stack.api, order_body([(sku, 1)], **body)) for sku in skus]
    ids = [o["order_id"] for o in orders]
    await asyncio.gather(*(wait_status(stack.api, oid, "CONFIRMED") for oid in ids))
    return ids, skus


def _auth(ledger: dict[str, Any], oid: str) -> dict[str, Any]:
    auths = [a for a in ledger["authorizations"] if a["order_id"] == oid]
    assert len(auths) == 1, auths
    return auths[0]  # type: ignore[no-any-return]


async def test_staff_merge_orders_into_one_parcel(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=RELEASE)
    ids, skus = await _confirmed_orders(stack, 2)
    r = await stack.api.post("/merges", json={"order_ids": ids, "note": "one box please"})
    assert r.status_code == 201, r.text
    merge = r.json()
    cid = merge["consolidation_id"]
    assert cid.startswith("CN-") and merge["status"] == "formed"
    assert [m["state"] for m in merge["members"]] == ["joined", "joined"]

    views = await asyncio.gather(*(wait_status(stack.api, oid, "COMPLETED", 60) for oid in ids))
    tracking = {v["shipments"][0]["tracking_number"] for v in views}
    assert len(tracking) == 1  # one parcel for both
    ledger = (await stack.payment.get("/_admin/ledger")).json()
    for v in views:
        assert [s["shipment_no"] for s in v["shipments"]] == [cid]
        assert {"type": "merged_into", "id": cid} in v["related"]
        kinds = [h["kind"] for h in v["history"]]
        assert "merged" in kinds and "status:PICKING" in kinds and "status:DELIVERED" in kinds
        # Each order kept its own payment and captured exactly its own total.
        auth = _auth(ledger, v["order_id"])
        assert [Decimal(x["amount"]) for x in auth["captures"]] == [Decimal(v["totals"]["total"])]
        assert v["payments"][0]["status"] == "captured"
    for sku in skus:
        assert await stack.stock(sku) == {"WH-SHA": (9, 0)}

    state = (await stack.carrier.get("/_admin/state")).json()["shipments"]
    booked = [s for s in state if s["reference"] == cid]
    assert len(booked) == 1
    assert sorted(i["sku"] for i in booked[0]["items"]) == sorted(skus)

    done = (await stack.api.get(f"/merges/{cid}")).json()
    assert done["status"] == "delivered" and done["parcel"]["status"] == "delivered"
    desc = await stack.client.get_workflow_handle(c.consolidation_workflow_id(cid)).describe()
    assert (await desc.memo_value("orders")) == ids
    member = await stack.client.get_workflow_handle(c.order_workflow_id(ids[0])).describe()
    assert (await member.memo_value("merged_into")) == cid
    await stack.save_history(cid, "consolidation_delivered_v2")
    await stack.save_history(ids[0], "order_merged_v4")


async def test_refused_merges_change_nothing(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=RELEASE)
    (mine,), _ = await _confirmed_orders(stack, 1)
    (other_customer,), _ = await _confirmed_orders(stack, 1, customer_id="C-2002")
    (elsewhere,), _ = await _confirmed_orders(stack, 1, postal_code="200002")
    cases = [
        ([mine, other_customer], 409, "merge_different_customers"),
        ([mine, elsewhere], 409, "merge_different_addresses"),
        ([mine, mine], 422, "invalid_request"),
        ([mine], 422, "invalid_request"),
        ([mine, "SO-20260101-00000000"], 404, "order_not_found"),
    ]
    for order_ids, status, code in cases:
        r = await stack.api.post("/merges", json={"order_ids": order_ids})
        assert r.status_code == status, r.text
        assert r.json()["error"]["code"] == code, r.text

    # Once picked, an order can no longer be merged.
    quick = await make_stack()
    sku = await quick.add_product({"WH-SHA": 10})
    picked = [(await place(quick.api, order_body([(sku, 1)])))["order_id"] for _ in range(2)]
    for oid in picked:
        await wait_status(quick.api, oid, {"SHIPPED", "DELIVERED", "COMPLETED"})
    r = await quick.api.post("/merges", json={"order_ids": picked})
    assert r.status_code == 409 and r.json()["error"]["code"] == "merge_already_picked", r.text

    for oid in (mine, other_customer, elsewhere):
        view = (await stack.api.get(f"/orders/{oid}")).json()
        assert not [x for x in view["related"] if x["type"] == "merged_into"]


async def test_cancelling_one_order_takes_it_out_of_the_merge(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=RELEASE)
    ids, skus = await _confirmed_orders(stack, 3)
    r = await stack.api.post("/merges", json={"order_ids": ids})
    assert r.status_code == 201, r.text
    cid = r.json()["consolidation_id"]

    r = await stack.api.post(f"/orders/{ids[1]}/cancel", json={"reason": "not needed"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "CANCELLED"
    assert await stack.stock(skus[1]) == {"WH-SHA": (10, 0)}
    merge = (await stack.api.get(f"/merges/{cid}")).json()
    assert [m["state"] for m in merge["members"]] == ["joined", "withdrawn", "joined"]

    # A merged order's address and lines are fixed while it is merged.
    moved = {**order_body()["ship_to"], "line1": "2 Nanjing Rd"}
    r = await stack.api.patch(f"/orders/{ids[0]}", json={"ship_to": moved})
    assert r.status_code == 409 and r.json()["error"]["code"] == "merged_order_locked"

    for oid in (ids[0], ids[2]):
        await wait_status(stack.api, oid, "COMPLETED", 60)
    state = (await stack.carrier.get("/_admin/state")).json()["shipments"]
    (parcel,) = [s for s in state if s["reference"] == cid]
    assert sorted(i["sku"] for i in parcel["items"]) == sorted([skus[0], skus[2]])
    ledger = (await stack.payment.get("/_admin/ledger")).json()
    assert _auth(ledger, ids[1])["status"] == "voided"


async def test_orders_placed_close_together_are_merged_by_rule(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=RELEASE, merge_window_seconds=60)
    # A customer of its own: the rule looks at every open order in the read model.
    customer = f"C-RULE-{uuid.uuid4().hex[:8]}"
    (first,), _ = await _confirmed_orders(stack, 1, customer_id=customer)
    (second,), _ = await _confirmed_orders(stack, 1, customer_id=customer)
    # Same customer, another address: ships alone.
    (apart,), _ = await _confirmed_orders(stack, 1, customer_id=customer, postal_code="200002")

    views = await asyncio.gather(
        *(wait_status(stack.api, oid, "COMPLETED", 60) for oid in (first, second, apart))
    )
    merged = [v["shipments"][0]["shipment_no"] for v in views[:2]]
    assert merged[0].startswith("CN-") and merged[0] == merged[1]
    assert views[2]["shipments"][0]["shipment_no"] == ""
    kinds = [h["kind"] for h in views[1]["history"]]
    assert "merge_proposed" in kinds and "merged" in kinds
    merge = (await stack.api.get(f"/merges/{merged[0]}")).json()
    assert [m["order_id"] for m in merge["members"]] == [first, second]
    desc = await stack.client.get_workflow_handle(c.consolidation_workflow_id(merged[0])).describe()
    assert desc.parent_id == c.order_workflow_id(second)
