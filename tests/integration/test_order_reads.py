"""Where `GET /orders/{id}` reads a running order from: the read model once the order is
recorded, its workflow only before that."""

from __future__ import annotations

from tests.integration.helpers import order_body, place, wait_status


async def test_a_running_order_is_read_from_the_read_model(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    sku = await stack.add_product({"WH-SHA": 5})
    oid = (await place(stack.api, order_body([(sku, 2)])))["order_id"]
    await wait_status(stack.api, oid, "CONFIRMED")
    # A mark only the stored row carries: the workflow's own view has no such note.
    await stack.sql(
        "update orders set view = jsonb_set(view, '{notes}', to_jsonb('as recorded'::text)) "
        "where order_id = :o",
        o=oid,
    )
    r = await stack.api.get(f"/orders/{oid}")
    assert r.status_code == 200, r.text
    assert r.json()["notes"] == "as recorded"
    assert r.json()["status"] == "CONFIRMED"


async def test_an_edit_is_read_back_as_soon_as_it_answers(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    sku = await stack.add_product({"WH-SHA": 9})
    oid = (await place(stack.api, order_body([(sku, 2)])))["order_id"]
    await wait_status(stack.api, oid, "CONFIRMED")
    for edit in (
        {"contact": {"email": "moved@example.com"}},
        {"lines": [{"sku": sku, "quantity": 3}]},
    ):
        answered = await stack.api.patch(f"/orders/{oid}", json=edit)
        assert answered.status_code == 200, answered.text
        # No polling: the workflow records an edit before it answers it.
        read = (await stack.api.get(f"/orders/{oid}")).json()
        for key in ("customer", "lines", "totals", "payments", "status"):
            assert read[key] == answered.json()[key], key
        assert [h["kind"] for h in read["history"]] == [
            h["kind"] for h in answered.json()["history"]
        ]
    assert read["customer"]["email"] == "moved@example.com"
    assert read["lines"][0]["quantity"] == 3


async def test_an_order_not_recorded_yet_is_answered_from_its_input(make_stack) -> None:
    # No worker: the workflow is started but has run no task, so nothing is recorded.
    stack = await make_stack(start_worker=False)
    sku = await stack.add_product({"WH-SHA": 5})
    placed = await place(stack.api, order_body([(sku, 1)]))
    r = await stack.api.get(f"/orders/{placed['order_id']}")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == placed["status"]
    assert r.json()["lines"] == placed["lines"]
    assert (await stack.api.get("/orders/WEB-19700101-NOSUCH")).status_code == 404
