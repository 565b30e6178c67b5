"""An edit that arrives with the order's start is handled like any other (its first task)."""

from __future__ import annotations

import asyncio

from tests.integration.helpers import order_body, place, wait_status
from workflows import contract as c


async def test_patch_in_the_first_task_answers_at_once(make_stack) -> None:
    # No worker yet: the order's start and the edit reach the workflow in one task.
    stack = await make_stack(start_worker=False, warehouse_release_seconds=3600)
    sku = await stack.add_product({"WH-SHA": 10}, price="10.00")
    oid = (await place(stack.api, order_body([(sku, 1)])))["order_id"]
    patch = asyncio.create_task(
        stack.api.patch(f"/orders/{oid}", json={"lines": [{"sku": sku, "quantity": 3}]})
    )
    # Give the update time to reach the server before the first task is polled.
    await asyncio.sleep(1.0)
    assert not patch.done()
    await stack.start_worker()
    r = await asyncio.wait_for(patch, 15)
    assert r.status_code == 200, r.text
    assert r.json()["lines"][0]["quantity"] == 3
    view = await wait_status(stack.api, oid, "CONFIRMED")
    assert view["lines"][0]["quantity"] == 3
    assert view["totals"]["subtotal"] == "30.00"
    assert await stack.stock(sku) == {"WH-SHA": (10, 3)}
    # Authorized once, for the edited total: the edit came before payment was taken.
    assert [p["status"] for p in view["payments"]] == ["authorized"]
    assert view["payments"][0]["amount"] == view["totals"]["total"]
    # The workflow never failed a task on the way.
    history = await stack.client.get_workflow_handle(c.order_workflow_id(oid)).fetch_history()
    assert not [e for e in history.events if e.HasField("workflow_task_failed_event_attributes")]


async def test_signal_in_the_first_task_is_applied(make_stack) -> None:
    stack = await make_stack(start_worker=False, warehouse_release_seconds=3600)
    sku = await stack.add_product({"WH-SHA": 10}, price="10.00")
    oid = (await place(stack.api, order_body([(sku, 1)])))["order_id"]
    handle = stack.client.get_workflow_handle(c.order_workflow_id(oid))
    await handle.signal(c.SIGNAL_CANCEL, c.CancelRequest(reason="changed my mind", actor="x"))
    await stack.start_worker()
    view = await wait_status(stack.api, oid, "CANCELLED")
    assert "changed my mind" in view["status_reason"]
    assert await stack.stock(sku) == {"WH-SHA": (10, 0)}
    history = await handle.fetch_history()
    assert not [e for e in history.events if e.HasField("workflow_task_failed_event_attributes")]
