"""Finding orders: the read model's search and the Temporal UI's search attributes (§6)."""

from __future__ import annotations

import uuid

from tests.integration.helpers import eventually, order_body, place, wait_status


async def test_list_filters_and_pages(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    customer = f"C-FIND-{uuid.uuid4().hex[:6]}"
    sku = await stack.add_product({"WH-SHA": 10})
    ids = []
    for lines in ([(sku, 1)], [("SKU-TEA-001", 1)], [(sku, 2), ("SKU-CUP-001", 1)]):
        order = await place(stack.api, order_body(lines, customer_id=customer))
        ids.append(order["order_id"])
        await wait_status(stack.api, order["order_id"], "CONFIRMED")

    page1 = (await stack.api.get("/orders", params={"customer_id": customer, "limit": 2})).json()
    assert len(page1["items"]) == 2 and page1["next_cursor"]
    page2 = (
        await stack.api.get(
            "/orders", params={"customer_id": customer, "limit": 2, "cursor": page1["next_cursor"]}
        )
    ).json()
    assert page2["next_cursor"] is None
    listed = [o["order_id"] for o in page1["items"] + page2["items"]]
    assert listed == list(reversed(ids))  # newest first

    by_sku = (await stack.api.get("/orders", params={"sku": sku})).json()["items"]
    assert sorted(o["order_id"] for o in by_sku) == sorted([ids[0], ids[2]])
    by_status = (
        await stack.api.get("/orders", params={"customer_id": customer, "status": "CONFIRMED"})
    ).json()["items"]
    assert len(by_status) == 3
    by_q = (await stack.api.get("/orders", params={"q": ids[1]})).json()["items"]
    assert [o["order_id"] for o in by_q] == [ids[1]]
    bad = await stack.api.get("/orders", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400
    bad = await stack.api.get("/orders", params={"status": "SLEEPING"})
    assert bad.status_code == 422

    for oid in ids:
        await stack.api.post(f"/orders/{oid}/cancel", json={})


async def test_orders_are_searchable_in_temporal(make_stack) -> None:
    stack = await make_stack()
    customer = f"C-SA-{uuid.uuid4().hex[:6]}"
    order = await place(stack.api, order_body([("SKU-TEA-003", 1)], customer_id=customer))
    await wait_status(stack.api, order["order_id"], "COMPLETED")

    async def search() -> list[str]:
        query = (
            f"CustomerId = '{customer}' AND OrderStatus = 'COMPLETED' "
            "AND Skus = 'SKU-TEA-003' AND Channel = 'web' AND OrderTotal > 0"
        )
        return [w.id async for w in stack.client.list_workflows(query)]

    found = await eventually(search, lambda ids: len(ids) == 1)
    assert found == [f"order-{order['order_id']}"]
    desc = await stack.client.get_workflow_handle(found[0]).describe()
    assert order["order_id"] in (await desc.static_summary() or "")


async def test_customer_contact_is_searchable_in_temporal(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    customer = f"C-SAC-{uuid.uuid4().hex[:6]}"
    email = f"{customer.lower()}@example.com"
    body = order_body([("SKU-TEA-003", 1)], customer_id=customer)
    body["customer"].update(name=f"Name {customer}", email=email, phone="+86 555 0101")
    order = await place(stack.api, body)
    oid = order["order_id"]
    await wait_status(stack.api, oid, "CONFIRMED")

    async def search(query: str) -> list[str]:
        return [w.id async for w in stack.client.list_workflows(query)]

    by_contact = (
        f"CustomerName = 'Name {customer}' AND CustomerEmail = '{email}' "
        "AND CustomerPhone = '+86 555 0101'"
    )
    assert await eventually(lambda: search(by_contact), lambda ids: len(ids) == 1) == [
        f"order-{oid}"
    ]

    new_email = f"new-{email}"
    r = await stack.api.patch(f"/orders/{oid}", json={"contact": {"email": new_email}})
    assert r.status_code == 200, r.text
    moved = f"CustomerEmail = '{new_email}' AND CustomerPhone = '+86 555 0101'"
    assert await eventually(lambda: search(moved), lambda ids: len(ids) == 1) == [f"order-{oid}"]
    assert await search(f"CustomerEmail = '{email}'") == []

    r = await stack.api.patch(f"/orders/{oid}", json={"contact": {"phone": ""}})
    assert r.status_code == 200, r.text
    no_phone = f"CustomerEmail = '{new_email}' AND CustomerPhone IS NULL"
    assert await eventually(lambda: search(no_phone), lambda ids: len(ids) == 1) == [f"order-{oid}"]
    await stack.api.post(f"/orders/{oid}/cancel", json={})
    await wait_status(stack.api, oid, "CANCELLED")
    await stack.save_history(oid, "order_contact_searchable")


async def test_healthz(make_stack) -> None:
    stack = await make_stack(start_worker=False)
    r = await stack.api.get("/healthz")
    assert r.status_code == 200
    assert r.json()["checks"] == {"api": "ok", "postgres": "ok", "temporal": "ok"}
