"""Property-based fuzzing of the operations on one order, aimed at orders whose workflows are
running, in many states: random but schema-valid (and invalid) edits, cancels, payments,
reviews, splits, returns reach live workflows, where random order numbers only ever meet 404.

There is one order in each state per set. Cancels and edits, which can move an order in any
state, get a set each, so a cancel fuzzed early cannot leave the other operations nothing but
closed orders. The other operations act on one state each (a review on the order held for
review, a payment on the one waiting for it, a return on the delivered one, ...) and share a
set, in the document's order: each operation meets what the ones before it left, and within
one operation every example meets what the examples before it left. Afterwards every workflow
of the run must still be healthy (no failed workflow task, not failed or terminated), answer
its view, and agree with the read model.

`ORDERFLOW_FUZZ_EXAMPLES` raises the examples per operation, as in test_fuzz.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import settings
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import Client, WorkflowExecutionStatus

from api.app import create_app
from models.status import OrderStatus
from orderflow.embedded import child_env
from orderflow.settings import Settings
from providers.smtp_standin import SmtpStandin
from tests.integration import test_fuzz
from tests.integration.conftest import ServerThread, Stack, standin_clients
from tests.integration.helpers import eventually, order_body, place
from workflows.contract import (
    QUERY_VIEW,
    WORKFLOW_ID_PREFIX,
    order_id_from_workflow_id,
    order_workflow_id,
)

EXAMPLES = int(os.environ.get("ORDERFLOW_FUZZ_EXAMPLES", "20"))
ROOT = Path(__file__).resolve().parents[2]
FUZZ_SETTINGS = settings(test_fuzz.FUZZ_SETTINGS, max_examples=EXAMPLES)

# The states the fuzzed orders wait in. Review holds orders over REVIEW_OVER; every other
# order stays well under it.
STATES = (
    "confirmed",
    "backordered",
    "awaiting_transfer",
    "declined",
    "review",
    "packed",
    "shipped",
    "split_packed",
    "lost",
    "delivered",
)
REVIEW_OVER = Decimal("50")
# Placed by an API whose warehouse release is an hour away, so they stay before picking.
HELD = {"confirmed", "backordered", "awaiting_transfer", "declined", "review"}
# The carrier stand-in keeps these parcels where they are until told to move.
HOLD = "11111"
LOST = "00000"
SHARED = "shared"
# Cancels and edits can move an order in any state, so each gets a set of orders of its own.
OWN_SET = {"PATCH /orders/{order_id}", "POST /orders/{order_id}/cancel"}
# Workflow task failures the server causes itself (a message arrived while the task ran); the
# task is retried and nothing in the workflow went wrong.
BENIGN_TASK_FAILURES = {
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND,
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_UPDATE,
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_STICKY_TASK_QUEUE,
}
HEALTHY = {WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED}

# How much of the worker's log a run prints.
LOG_LINES = 200

# Answers per operation and status, and per state and status, printed at the end of the
# module (`pytest -s` shows them).
SEEN: Counter[tuple[str, int]] = Counter()
BY_STATE: Counter[tuple[str, int]] = Counter()
TURNS: Counter[tuple[str, bool]] = Counter()

TARGET = test_fuzz.DeferredApp()
# Excluding, not including: includes add up with test_fuzz.py's per-operation settings.
schema = test_fuzz.schema.exclude(path_regex=r"^(?!.*\{order_id\})")
schema.app = TARGET


LABELS = {
    f"{method.upper()} {path}"
    for path, operations in schema.raw_schema["paths"].items()
    if "{order_id}" in path
    for method in operations
}
# A renamed route would otherwise quietly join the shared set.
assert OWN_SET <= LABELS, OWN_SET - LABELS


def _group(label: str) -> str:
    return label if label in OWN_SET else SHARED


GROUPS = sorted({_group(label) for label in LABELS})


@dataclass
class Rig:
    """The fuzzed orders, by group and state, and what runs them."""

    settings: Settings
    stack: Stack
    worker: subprocess.Popen[bytes]
    orders: dict[str, dict[str, str]] = field(default_factory=dict)
    totals: dict[str, str] = field(default_factory=dict)
    lines: dict[str, list[str]] = field(default_factory=dict)
    skus: dict[str, str] = field(default_factory=dict)


def _env(settings: Settings) -> dict[str, str]:
    values = settings.model_dump(mode="json")
    return child_env(**{k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()})


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _client(app: Any, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://api",
        timeout=60,
        headers={"Authorization": f"Bearer {key}"},
    )


async def _order_in(state: str, rig: Rig, flowing: httpx.AsyncClient) -> str:
    api = rig.stack.api if state in HELD else flowing
    skus = rig.skus
    cheap = [(skus["cheap"], 1)]
    bodies = {
        # Two units, so that it can be split.
        "confirmed": order_body([(skus["cheap"], 1), (skus["sha"], 1)]),
        "backordered": order_body([(skus["none"], 1)]),
        "awaiting_transfer": order_body(cheap, payment={"method": "bank_transfer"}),
        "declined": order_body(cheap, token="tok_decline"),
        "review": order_body([(skus["pricey"], 1)]),
        "packed": order_body(cheap, postal_code=HOLD),
        "shipped": order_body(cheap, postal_code=HOLD),
        "split_packed": order_body([(skus["sha"], 1), (skus["rtm"], 1)], postal_code=HOLD),
        "lost": order_body(cheap, postal_code=LOST),
        "delivered": order_body(cheap),
    }
    placed = await place(api, bodies[state])
    oid: str = placed["order_id"]
    rig.totals[oid] = placed["totals"]["total"]
    rig.lines[oid] = [line["sku"] for line in placed["lines"]]

    async def view() -> dict[str, Any]:
        assert rig.worker.poll() is None, f"the worker exited with {rig.worker.returncode}"
        r = await api.get(f"/orders/{oid}")
        assert r.status_code == 200, r.text
        view: dict[str, Any] = r.json()
        return view

    def booked(v: dict[str, Any], parcels: int) -> bool:
        tracked = [s for s in v["shipments"] if s["tracking_number"]]
        return v["status"] == "PACKED" and len(tracked) == parcels

    ready = {
        "confirmed": lambda v: v["status"] == "CONFIRMED",
        "backordered": lambda v: v["status"] == "BACKORDERED",
        "awaiting_transfer": lambda v: v["status"] == "AWAITING_PAYMENT",
        "declined": lambda v: v["status"] == "AWAITING_PAYMENT",
        "review": lambda v: v["status"] == "PENDING_REVIEW",
        "packed": lambda v: booked(v, 1),
        "shipped": lambda v: booked(v, 1),
        "split_packed": lambda v: booked(v, 2),
        "lost": lambda v: bool(v["open_exception"]),
        "delivered": lambda v: v["status"] == "DELIVERED",
    }[state]
    got = await eventually(view, ready, within=90)
    if state == "shipped":
        # One step (picked up), then the carrier holds the parcel in transit.
        shipment = got["shipments"][0]["shipment_id"]
        r = await rig.stack.carrier.post(f"/_admin/shipments/{shipment}/advance")
        assert r.status_code == 200, r.text
        await eventually(view, lambda v: v["status"] == "SHIPPED", within=60)
    return oid


@pytest.fixture(scope="module")
def live_settings(base_settings: Settings) -> Settings:
    """Orders placed with these stay before picking for an hour, delivered ones stay open
    for returns for an hour, and anything over REVIEW_OVER is held for review."""
    return base_settings.model_copy(
        update={
            "task_queue": f"fuzz-live-{uuid.uuid4().hex[:8]}",
            "warehouse_release_seconds": 3600.0,
            "after_sales_window_seconds": 3600.0,
            "review_amount_over": REVIEW_OVER,
        }
    )


@pytest.fixture(scope="module")
def worker(live_settings: Settings) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A worker in a process of its own: schemathesis sends each request from the test's
    thread and blocks it until the answer, so nothing on the test's event loop would run."""
    log = live_settings.data_dir / f"worker-{live_settings.task_queue}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orderflow", "worker"],
            cwd=ROOT,
            env=_env(live_settings),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    yield proc, log
    _stop(proc)
    _report(log)


@pytest.fixture(scope="module")
async def rig(
    live_settings: Settings,
    worker: tuple[subprocess.Popen[bytes], Path],
    api_server: ServerThread,
    temporal_client: Client,
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpStandin,
    staff_key: str,
) -> AsyncIterator[Rig]:
    held = live_settings
    flowing = held.model_copy(update={"warehouse_release_seconds": 0.0})
    stack = Stack(
        settings=held,
        api=_client(create_app(held, client=temporal_client, sessions=sessions), staff_key),
        client=temporal_client,
        sessions=sessions,
        **standin_clients(held, smtp_server),
        staff_key=staff_key,
    )
    flowing_api = _client(create_app(flowing, client=temporal_client, sessions=sessions), staff_key)
    rig = Rig(settings=held, stack=stack, worker=worker[0])
    try:
        rig.skus = {
            "cheap": await stack.add_product({"WH-SHA": 10_000}, price="5.00"),
            "pricey": await stack.add_product({"WH-SHA": 10_000}, price="60.00"),
            "none": await stack.add_product({"WH-SHA": 0}),
            "sha": await stack.add_product({"WH-SHA": 10_000}, price="5.00"),
            "rtm": await stack.add_product({"WH-RTM": 10_000}, price="5.00"),
        }
        gate = asyncio.Semaphore(16)

        async def one(state: str) -> str:
            async with gate:
                return await _order_in(state, rig, flowing_api)

        wanted = [(g, s) for g in GROUPS for s in STATES]
        ids = await asyncio.gather(*(one(s) for _, s in wanted))
        for (g, s), oid in zip(wanted, ids, strict=True):
            rig.orders.setdefault(g, {})[s] = oid
        # The app schemathesis drives; with no client or sessions handed in, its lifespan
        # connects on the event loop schemathesis runs it on (see test_fuzz.py).
        TARGET.app = create_app(held)
        yield rig
    finally:
        await flowing_api.aclose()
        await stack.aclose()


def _report(worker_log: Path) -> None:
    print("\nfuzz answers on running orders (operation: status x count)")
    for label in sorted({label for label, _ in SEEN}):
        counts = ", ".join(f"{st} x{n}" for (lb, st), n in sorted(SEEN.items()) if lb == label)
        print(f"  {label}: {counts}")
    print("by the state the order was placed in:")
    for state in STATES:
        counts = ", ".join(f"{st} x{n}" for (s, st), n in sorted(BY_STATE.items()) if s == state)
        print(f"  {state}: {counts}")
    print(f"  {sum(SEEN.values())} requests to {len({label for label, _ in SEEN})} operations")
    # What the worker logged above INFO, one line per record with its last line (the
    # exception, for a traceback): the evidence when a workflow task or an activity failed.
    text = worker_log.read_text(errors="replace") if worker_log.exists() else ""
    records: list[list[str]] = []
    for line in text.splitlines():
        if line[:4].isdigit() or not records:
            records.append([line])
        else:
            records[-1].append(line)
    loud = [r for r in records if " INFO " not in r[0]]
    print(f"worker log: {len(loud)} records above INFO")
    for r in loud[:LOG_LINES]:
        print(f"  {r[0]}" + (f"\n    -> {r[-1].strip()}" if len(r) > 1 else ""))


def _steer(value: Any, domain: dict[str, list[Any]], salt: str) -> Any:
    """`value` with most of the leaves named in `domain` swapped for one of its values: random
    SKUs, tokens and warehouses are refused before an order's workflow ever sees them."""
    if isinstance(value, list):
        return [_steer(v, domain, f"{salt}.{i}") for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    steered = {}
    for key, v in value.items():
        # A checksum, not hash(): the same case must be steered the same way in every run.
        pick = zlib.crc32(json.dumps([salt, key, v], default=str).encode())
        if key in domain and isinstance(v, str | int | float) and pick % 4:
            steered[key] = domain[key][pick % len(domain[key])]
        else:
            steered[key] = _steer(v, domain, f"{salt}.{key}")
    return steered


@schema.parametrize()
@FUZZ_SETTINGS
def test_fuzz_running_orders(case: schemathesis.Case, rig: Rig) -> None:
    """Every operation on one order, with a staff key, on orders in each state in turn."""
    label = case.operation.label
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    # In turn rather than drawn: a draw spreads a few examples over ten states unevenly. Valid
    # and invalid cases take turns apart: only valid ones can reach a workflow, and each
    # state should get its share of those.
    turn = (label, positive)
    state = STATES[TURNS[turn] % len(STATES)]
    TURNS[turn] += 1
    oid = rig.orders[_group(label)][state]
    case.path_parameters["order_id"] = oid
    if positive and case.body:
        domain: dict[str, list[Any]] = {
            # Mostly the order's own SKUs: returns and splits must name them.
            "sku": 3 * rig.lines[oid] + list(rig.skus.values()),
            "quantity": [1, 1, 2],
            "warehouse_id": ["WH-SHA", "WH-RTM"],
            "token": ["tok_ok", "tok_decline", "tok_flaky"],
            "postal_code": ["200001", HOLD, LOST, "99999"],
            "currency": ["USD"],
            "amount": [rig.totals[oid]],
        }
        # Still schema-valid: each value fits the field it replaces.
        case.body = _steer(case.body, domain, f"{label}#{TURNS[turn]}")
    response = case.call_and_validate(headers={"Authorization": f"Bearer {rig.stack.staff_key}"})
    SEEN[(label, response.status_code)] += 1
    BY_STATE[(state, response.status_code)] += 1


async def test_fuzzed_workflows_stay_healthy(rig: Rig, temporal_client: Client) -> None:
    """After the fuzzing: no workflow of the run failed or hit a failing workflow task; every
    order answers its view, and the read model shows the status the workflow does."""
    assert rig.worker.poll() is None, f"the worker exited with {rig.worker.returncode}"
    client = temporal_client
    query = f"TaskQueue = '{rig.settings.task_queue}'"
    executions = [wf async for wf in client.list_workflows(query)]
    placed = {oid for by_state in rig.orders.values() for oid in by_state.values()}
    seen_orders = {
        order_id_from_workflow_id(wf.id)
        for wf in executions
        if wf.id.startswith(WORKFLOW_ID_PREFIX)
    }
    assert placed <= seen_orders, placed - seen_orders
    gate = asyncio.Semaphore(16)
    problems: list[str] = []

    async def check_workflow(workflow_id: str) -> None:
        async with gate:
            handle = client.get_workflow_handle(workflow_id)
            desc = await handle.describe()
            if desc.status not in HEALTHY:
                problems.append(f"{workflow_id}: workflow {desc.status}")
            pending = desc.raw_description.pending_workflow_task
            if pending.attempt > 1:
                problems.append(f"{workflow_id}: workflow task on attempt {pending.attempt}")
            history = await handle.fetch_history()
            for event in history.events:
                if event.event_type != EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                    continue
                failed = event.workflow_task_failed_event_attributes
                cause = WorkflowTaskFailedCause.Name(failed.cause)
                print(f"{workflow_id} event {event.event_id}: {cause}: {failed.failure.message}")
                if failed.cause not in BENIGN_TASK_FAILURES:
                    problems.append(
                        f"{workflow_id} event {event.event_id}: {cause}: "
                        f"{failed.failure.message}\n{failed.failure.stack_trace}"
                    )

    await asyncio.gather(*(check_workflow(wf.id) for wf in executions))
    assert not problems, "\n".join(problems)

    known = {s.value for s in OrderStatus}

    async def check_order(oid: str) -> None:
        async with gate:
            r = await rig.stack.api.get(f"/orders/{oid}")
            assert r.status_code == 200, (oid, r.text)
            assert r.json()["status"] in known, (oid, r.json()["status"])
            handle = client.get_workflow_handle(order_workflow_id(oid))

            async def both() -> tuple[str, str | None, str]:
                rows = await rig.stack.sql("select status from orders where order_id=:o", o=oid)
                desc = await handle.describe()
                if desc.status == WorkflowExecutionStatus.RUNNING:
                    view = await handle.query(QUERY_VIEW)
                else:
                    view = await handle.result()
                # The order number rides along so that a failure names the order.
                return oid, (rows[0][0] if rows else None), view["status"]

            await eventually(both, lambda got: got[1] == got[2], within=20)

    await asyncio.gather(*(check_order(oid) for oid in sorted(seen_orders)))
