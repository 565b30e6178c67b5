"""What a chaos run checks its invariants against, each from its own source of truth:
PostgreSQL (read model, stock, outbox, intake), the gateway's ledger, the carrier's shipments,
the SMTP server's mailbox and the workflows themselves."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from bench.chaos_stack import Ports, standin_client
from models.order import OrderView
from workflows import contract as c

Place = tuple[str, str]  # (warehouse, SKU)


@dataclass(frozen=True)
class Crash:
    """Processes killed (by a fault, or dying on their own) and when, in wall-clock seconds."""

    cause: str
    processes: frozenset[str]
    began: float
    ended: float


@dataclass
class WorkflowState:
    """An order's workflow: its Temporal status and what its own view says."""

    status: str
    digest: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def digest(view: dict[str, Any], history: list[tuple[int, str]]) -> dict[str, Any]:
    """What the read model and the workflow must agree on, in one comparable shape."""
    return {
        "status": view["status"],
        "lines": sorted((ln["sku"], ln["quantity"]) for ln in view["lines"]),
        "total": str(Decimal(view["totals"]["total"])),
        "payments": sorted(
            (p["authorization_id"], p["status"], str(Decimal(p["captured"])))
            for p in view["payments"]
        ),
        "shipments": sorted(
            (s["shipment_no"] or s["shipment_id"], s["status"]) for s in view["shipments"]
        ),
        "history": history,
    }


@dataclass
class Evidence:
    """Everything the invariants are checked against, read once the run has settled."""

    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The order's history as the read model has it: (seq, kind) in order.
    history: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    # The same entries' (kind, detail), for what an entry says (a payment's reference).
    history_detail: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    intake: dict[str, list[str]] = field(default_factory=dict)
    stock: dict[Place, tuple[int, int]] = field(default_factory=dict)
    baseline: dict[Place, int] = field(default_factory=dict)
    received: dict[Place, int] = field(default_factory=dict)
    held: dict[Place, int] = field(default_factory=dict)
    shipped: dict[Place, int] = field(default_factory=dict)
    # order -> state ('held' / 'shipped') -> SKU -> units
    order_units: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    outbox: list[dict[str, str]] = field(default_factory=list)
    authorizations: list[dict[str, Any]] = field(default_factory=list)
    # Bank transfers the gateway received, and whether it delivered their webhooks.
    transfers: list[dict[str, Any]] = field(default_factory=list)
    parcels: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    workflows: dict[str, WorkflowState] = field(default_factory=dict)
    # Workflows of any type that failed, were terminated, or outlived their order.
    broken_workflows: list[str] = field(default_factory=list)
    # How often the worker died: killed by the run, or on its own.
    worker_kills: int = 0
    # Every process killed during the run, to tell what an email sent twice was caused by.
    crashes: list[Crash] = field(default_factory=list)


async def read_stock(sessions: async_sessionmaker[AsyncSession]) -> dict[Place, tuple[int, int]]:
    """On-hand and reserved units per warehouse and SKU."""
    async with sessions() as s:
        rows = await s.execute(text("select warehouse_id, sku, on_hand, reserved from stock"))
        return {(wh, sku): (int(on), int(res)) for wh, sku, on, res in rows}


async def gather_evidence(
    sessions: async_sessionmaker[AsyncSession],
    client: Client,
    ports: Ports,
    baseline: dict[Place, int],
    crashes: list[Crash],
) -> Evidence:
    """Read every source once."""
    worker_kills = sum(1 for c in crashes if "worker" in c.processes)
    ev = Evidence(baseline=baseline, worker_kills=worker_kills, crashes=crashes)
    await _read_database(sessions, ev)
    ev.stock = await read_stock(sessions)
    async with standin_client(ports.payment_url, 60) as pay:
        ev.authorizations = (await pay.get("/_admin/ledger")).json()["authorizations"]
        ev.transfers = (await pay.get("/_admin/transfers")).json()["transfers"]
    async with standin_client(ports.carrier_url, 60) as carrier:
        for parcel in (await carrier.get("/_admin/state")).json()["shipments"]:
            ev.parcels.setdefault(parcel["reference"], []).append(parcel)
    async with standin_client(ports.mail_url, 60) as mail:
        ev.messages = (await mail.get("/messages")).json()
    ids = set(ev.orders) | set(ev.intake)
    limit = asyncio.Semaphore(16)

    async def one(order_id: str) -> None:
        async with limit:
            ev.workflows[order_id] = await _workflow_state(client, order_id)

    await asyncio.gather(*(one(oid) for oid in sorted(ids)))
    ev.broken_workflows = await _broken_workflows(client, ev)
    return ev


async def _read_database(sessions: async_sessionmaker[AsyncSession], ev: Evidence) -> None:
    async with sessions() as s:
        for oid, status, view in await s.execute(text("select order_id, status, view from orders")):
            ev.orders[oid] = {"status": status, "view": view}
        events = await s.execute(
            text("select order_id, seq, kind, detail from order_events order by 1, 2")
        )
        for oid, seq, kind, detail in events:
            ev.history.setdefault(oid, []).append((int(seq), kind))
            ev.history_detail.setdefault(oid, []).append((kind, detail or ""))
        for key, oid in await s.execute(text("select key, order_id from order_intake")):
            ev.intake.setdefault(oid, []).append(key)
        received = await s.execute(
            text("select warehouse_id, sku, sum(quantity) from stock_receipts group by 1, 2")
        )
        ev.received = {(wh, sku): int(n) for wh, sku, n in received}
        held: dict[Place, int] = defaultdict(int)
        shipped: dict[Place, int] = defaultdict(int)
        units = await s.execute(
            text("select order_id, warehouse_id, sku, state, quantity from reservations")
        )
        for oid, wh, sku, state, qty in units:
            (held if state == "held" else shipped)[(wh, sku)] += int(qty)
            per_order = ev.order_units.setdefault(oid, {"held": {}, "shipped": {}})
            bucket = per_order.setdefault(state, {})
            bucket[sku] = bucket.get(sku, 0) + int(qty)
        ev.held, ev.shipped = dict(held), dict(shipped)
        outbox = await s.execute(
            text("select key, order_id, kind, status, attempts, last_error from outbox")
        )
        ev.outbox = [
            {
                "key": k,
                "order_id": oid,
                "kind": kind,
                "status": st,
                "attempts": str(attempts),
                "last_error": last_error or "",
            }
            for k, oid, kind, st, attempts, last_error in outbox
        ]


async def _workflow_state(client: Client, order_id: str) -> WorkflowState:
    handle = client.get_workflow_handle(c.order_workflow_id(order_id), result_type=OrderView)
    try:
        desc = await handle.describe()
        status = desc.status.name if desc.status is not None else "UNKNOWN"
        if desc.status == WorkflowExecutionStatus.RUNNING:
            view = await handle.query(c.QUERY_VIEW, result_type=OrderView)
        elif desc.status == WorkflowExecutionStatus.COMPLETED:
            view = await handle.result()
        else:
            return WorkflowState(status)
        history = [(h.seq, h.kind) for h in view.history]
        return WorkflowState(status, digest(view.model_dump(mode="json"), history))
    except RPCError as exc:
        return WorkflowState("MISSING", error=str(exc))


async def _broken_workflows(client: Client, ev: Evidence) -> list[str]:
    broken = []
    query = "ExecutionStatus != 'Running' AND ExecutionStatus != 'Completed'"
    async for wf in client.list_workflows(query):
        status = wf.status.name if wf.status is not None else "UNKNOWN"
        broken.append(f"{wf.id} ({wf.workflow_type}) is {status}")
    # A parcel's or return's workflow still running after its order ended was left behind.
    open_children = "ExecutionStatus = 'Running' AND WorkflowType != 'OrderWorkflow'"
    async for wf in client.list_workflows(open_children):
        parent = wf.parent_id
        if (
            parent is not None
            and ev.workflows.get(
                c.order_id_from_workflow_id(parent), WorkflowState("RUNNING")
            ).status
            != "RUNNING"
        ):
            broken.append(f"{wf.id} ({wf.workflow_type}) runs on after its order {parent} ended")
    return broken
