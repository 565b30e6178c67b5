"""Signals typed into the Temporal CLI meet the same checks as the API's updates: whatever they
carry, a bad one is refused, kept in the order's history, raised as a staff alert, and never
fails or wedges the order's workflow."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus

from tests.integration.helpers import eventually, order_body, place, wait_status
from workflows import contract as c

TEMPORAL = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")

# (signal, --input JSON or None for no input at all, what the refusal is about)
MALFORMED = [
    ("modify", '"hello"', "a string"),
    ("modify", "[1, 2]", "a list"),
    ("modify", '{"lines": "SKU-TEA-001"}', "lines of the wrong type"),
    ("modify", '{"lines": [{"sku": "SKU-TEA-001", "quantity": -1}]}', "a negative quantity"),
    ("modify", '{"lines": [{"sku": "SKU-TEA-001", "quantity": "2"}]}', "a quantity as text"),
    ("modify", '{"lines": [{"sku": "SKU-TEA-001", "quantity": 1e30}]}', "a huge quantity"),
    ("modify", '{"lines": []}', "no lines"),
    ("modify", "{}", "nothing to change"),
    ("modify", '{"contact": {"email": "not-an-email"}}', "a bad email"),
    ("modify", '{"ship_to": {"name": "x"}}', "half an address"),
    ("cancel", '{"reason": "' + "x" * 600 + '"}', "a reason too long"),
    ("cancel", '{"reason": 5, "actor": {"a": 1}}', "an actor of the wrong type"),
    ("review", '{"decision": "maybe"}', "an unknown decision"),
    ("payment_received", '{"amount": "-5"}', "a negative payment"),
    ("payment_received", '{"amount": "abc"}', "an amount that is no number"),
    ("payment_method", '{"method": "exchange_credit", "token": "t"}', "a system-only method"),
    ("exception_action", '{"action": "explode"}', "an unknown action"),
    ("return_request", '{"lines": [], "reason": ""}', "an empty return"),
    ("split", '{"parcels": [{"lines": []}]}', "one empty parcel"),
    ("modify", None, "no input at all"),
]


async def _cli_signal(address: str, workflow_id: str, name: str, payload: str | None) -> None:
    args = [TEMPORAL, "workflow", "signal", "--address", address, "--workflow-id", workflow_id]
    args += ["--name", name] + (["--input", payload] if payload is not None else [])
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, (out, err)


async def _view(stack, oid: str) -> dict:
    r = await stack.api.get(f"/orders/{oid}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("signal,payload,about", MALFORMED, ids=[m[2] for m in MALFORMED])
async def test_a_malformed_signal_is_refused_and_changes_nothing(
    make_stack, signal: str, payload: str | None, about: str
) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    sku = await stack.add_product({"WH-SHA": 10}, price="10.00")
    oid = (await place(stack.api, order_body([(sku, 2)])))["order_id"]
    before = await wait_status(stack.api, oid, "CONFIRMED")
    wid = c.order_workflow_id(oid)

    await _cli_signal(stack.settings.temporal_address, wid, signal, payload)
    view = await eventually(
        lambda: _view(stack, oid),
        lambda v: any(a["kind"] == "signal_refused" for a in v["alerts"]),
    )
    refused = [h for h in view["history"] if h["kind"].endswith("_refused")]
    assert refused and signal in (refused[-1]["detail"] + " " + view["alerts"][-1]["message"])
    assert view["status"] == "CONFIRMED"
    assert view["lines"] == before["lines"] and view["customer"] == before["customer"]
    assert view["version"] == before["version"]
    assert await stack.stock(sku) == {"WH-SHA": (10, 2)}

    # The order is neither failed nor wedged: an edit after it answers at once.
    desc = await stack.client.get_workflow_handle(wid).describe()
    assert desc.status == WorkflowExecutionStatus.RUNNING
    r = await asyncio.wait_for(stack.api.post(f"/orders/{oid}/cancel", json={"reason": "done"}), 15)
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED", r.text
    assert await stack.stock(sku) == {"WH-SHA": (10, 0)}


async def test_a_modify_signal_naming_an_unknown_sku_is_refused(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    sku = await stack.add_product({"WH-SHA": 10}, price="10.00")
    oid = (await place(stack.api, order_body([(sku, 2)])))["order_id"]
    await wait_status(stack.api, oid, "CONFIRMED")
    wid = c.order_workflow_id(oid)
    await _cli_signal(
        stack.settings.temporal_address,
        wid,
        "modify",
        '{"lines": [{"sku": "SKU-NO-SUCH-THING", "quantity": 1}], "actor": "staff:ann"}',
    )
    view = await eventually(
        lambda: _view(stack, oid),
        lambda v: any(a["kind"] == "signal_refused" for a in v["alerts"]),
    )
    refusal = next(h for h in view["history"] if h["kind"] == "edit_refused")
    assert refusal["actor"] == "staff:ann (claimed)"
    assert "lines_invalid" in refusal["detail"] and "SKU-NO-SUCH-THING" in refusal["detail"]
    assert await stack.stock(sku) == {"WH-SHA": (10, 2)}
    desc = await stack.client.get_workflow_handle(wid).describe()
    assert desc.status == WorkflowExecutionStatus.RUNNING

    # The API refuses the same edit with 422 and the same rule, and keeps it in the history.
    r = await stack.api.patch(
        f"/orders/{oid}", json={"lines": [{"sku": "SKU-NO-SUCH-THING", "quantity": 1}]}
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "lines_invalid", r.text
    kinds = [h["kind"] for h in (await _view(stack, oid))["history"]]
    assert kinds.count("edit_refused") == 2


async def test_a_signal_with_a_long_actor_still_reaches_the_read_model(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    oid = (await place(stack.api, order_body()))["order_id"]
    await wait_status(stack.api, oid, "CONFIRMED")
    actor = "staff:" + "a" * 190
    await _cli_signal(
        stack.settings.temporal_address,
        c.order_workflow_id(oid),
        "cancel",
        '{"reason": "long name", "actor": "' + actor + '"}',
    )
    view = await wait_status(stack.api, oid, "CANCELLED")
    entry = next(h for h in view["history"] if h["kind"] == "status:CANCELLED")
    assert entry["actor"].startswith("staff:aaa") and len(entry["actor"]) <= 100


async def test_return_signals_are_checked_like_their_updates(make_stack) -> None:
    stack = await make_stack(after_sales_window_seconds=3600)
    oid = (await place(stack.api, order_body([("SKU-TEA-001", 1)])))["order_id"]
    await wait_status(stack.api, oid, "DELIVERED")
    r = await stack.api.post(
        f"/orders/{oid}/returns",
        json={"lines": [{"sku": "SKU-TEA-001", "quantity": 1}], "reason": "too big"},
    )
    assert r.status_code == 200, r.text
    rid = [x["id"] for x in r.json()["related"] if x["type"] == "return"][-1]
    wid = c.return_workflow_id(rid)
    address = stack.settings.temporal_address
    await _cli_signal(address, wid, "return_decision", '{"decision": "maybe"}')
    await _cli_signal(address, wid, "return_receipt", '{"condition": "sellable", "actor": "x"}')
    await _cli_signal(address, wid, "return_decision", None)
    handle = stack.client.get_workflow_handle(wid)

    async def return_view() -> dict:
        view = await handle.query(c.QUERY_RETURN_VIEW)
        return view if isinstance(view, dict) else view.model_dump(mode="json")

    view = await eventually(
        return_view,
        lambda v: [h["kind"] for h in v["history"]].count("signal_refused") == 3,
    )
    refused = [h["detail"] for h in view["history"] if h["kind"] == "signal_refused"]
    assert "malformed" in refused[0] and "not_awaiting_inspection" not in refused[0]
    assert "return_receipt" in refused[1]
    assert view["status"] == "REQUESTED"

    await _cli_signal(address, wid, "return_decision", '{"decision": "approve", "actor": "ann"}')
    view = await eventually(return_view, lambda v: v["status"] != "REQUESTED")
    decided = next(h for h in view["history"] if h["kind"] == "decision:approve")
    assert decided["actor"] == "ann (claimed)"
    desc = await handle.describe()
    assert desc.status == WorkflowExecutionStatus.RUNNING
