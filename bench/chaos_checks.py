"""The invariants a chaos run must leave standing (§10): each a pure function of the evidence."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from activities.outbox import message_id
from bench.chaos_evidence import Evidence, digest
from bench.chaos_orders import OrderRun
from models.status import TERMINAL
from providers.mail import MESSAGE_ID_DOMAIN

ZERO = Decimal("0")
CLOSED = frozenset(s.value for s in TERMINAL)
PAID_OUTSIDE = frozenset({"bank_transfer", "invoice"})
# Emails an order sends at most once, whatever happens to it.
ONCE = frozenset({"confirmed", "shipped", "delivered", "cancelled"})


@dataclass
class Invariant:
    """One invariant: how many things it looked at and which of them broke it."""

    section: str
    name: str
    checked: int = 0
    violations: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def held(self) -> bool:
        return not self.violations

    def expect(self, ok: bool, what: str) -> None:
        self.checked += 1
        if not ok:
            self.violations.append(what)


def check_all(ev: Evidence, runs: list[OrderRun]) -> list[Invariant]:
    """Every invariant, in the order of the table."""
    checks: list[Callable[[Evidence, list[OrderRun]], Invariant]] = [
        ends_as_expected,
        read_model_matches_workflows,
        captured_equals_shipped,
        no_double_capture,
        closed_orders_hold_no_money,
        read_model_payments_match_gateway,
        stock_conserved,
        units_follow_parcels,
        no_email_twice,
        emails_follow_history,
        every_email_sent,
        no_order_lost,
    ]
    return [check(ev, runs) for check in checks]


# ---- (a) statuses ----------------------------------------------------------------------


def ends_as_expected(ev: Evidence, runs: list[OrderRun]) -> Invariant:
    inv = Invariant("a", "each order ends in the status its story allows")
    for run in runs:
        if not run.order_id:
            continue
        status = ev.orders.get(run.order_id, {}).get("status", "missing")
        inv.expect(
            status in run.expected,
            f"{run.order_id} ({run.kind}): {status}, expected {'/'.join(sorted(run.expected))}"
            + (f"; {'; '.join(run.notes)}" if run.notes else ""),
        )
        if run.edited_lines is not None and status != "missing":
            lines = {ln["sku"]: ln["quantity"] for ln in ev.orders[run.order_id]["view"]["lines"]}
            inv.expect(
                lines == run.edited_lines,
                f"{run.order_id}: lines {lines} after the accepted edit {run.edited_lines}",
            )
    return inv


def read_model_matches_workflows(ev: Evidence, runs: list[OrderRun]) -> Invariant:
    inv = Invariant("a", "read model = workflow's view (status, lines, money, history)")
    for oid, row in sorted(ev.orders.items()):
        wf = ev.workflows.get(oid)
        if wf is None:
            continue
        stored = digest(row["view"] | {"status": row["status"]}, ev.history.get(oid, []))
        differ = [k for k in stored if stored[k] != wf.digest.get(k)]
        inv.expect(
            not differ,
            f"{oid}: {', '.join(differ)} differ: read model "
            + "; ".join(f"{k} {stored[k]}" for k in differ)
            + f" / workflow {wf.status} "
            + "; ".join(f"{k} {wf.digest.get(k)}" for k in differ)
            + (f" {wf.error}" if wf.error else ""),
        )
        inv.expect(
            (wf.status == "RUNNING") == (row["status"] not in CLOSED | {"RETURNED"}),
            f"{oid}: workflow {wf.status} while the order is {row['status']}",
        )
    for broken in ev.broken_workflows:
        inv.expect(False, broken)
    return inv


# ---- (b) money -------------------------------------------------------------------------


def _left(parcels: Iterable[dict[str, Any]]) -> int:
    """How many of these bookings the carrier picked up (a cancelled one has no events)."""
    return sum(1 for p in parcels if p["events"])


def _parcel_refs(view: dict[str, Any]) -> list[str]:
    """The carrier references of the order's parcels: its parcel numbers, or its own."""
    split = [s["shipment_no"] for s in view["shipments"] if s.get("shipment_no")]
    return split or [view["order_id"]]


def _shipped_value(ev: Evidence, view: dict[str, Any]) -> Decimal:
    """What the parcels that left are worth: the order total, or each split parcel's share."""
    split = [s for s in view["shipments"] if s.get("shipment_no")]
    if not split:
        left = _left(ev.parcels.get(view["order_id"], []))
        return Decimal(view["totals"]["total"]) if left else ZERO
    return sum(
        (Decimal(s["amount"] or 0) for s in split if _left(ev.parcels.get(s["shipment_no"], []))),
        ZERO,
    )


def _auths_by_order(ev: Evidence) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for a in ev.authorizations:
        found.setdefault(a["order_id"], []).append(a)
    return found


def _sum(ops: Iterable[dict[str, Any]]) -> Decimal:
    return sum((Decimal(op["amount"]) for op in ops), ZERO)


def captured_equals_shipped(ev: Evidence, runs: list[OrderRun]) -> Invariant:
    inv = Invariant("b", "captured at the gateway = value of the parcels that left")
    auths = _auths_by_order(ev)
    for oid, row in sorted(ev.orders.items()):
        view = row["view"]
        captured = sum((_sum(a["captures"]) for a in auths.get(oid, [])), ZERO)
        if view["payment_method"] in PAID_OUTSIDE:
            # Paid by bank transfer or invoice: the gateway never sees the money.
            inv.expect(captured == ZERO, f"{oid}: {captured} captured for a pay-later order")
            continue
        expected = _shipped_value(ev, view)
        inv.expect(
            captured == expected,
            f"{oid} ({row['status']}): captured {captured}, parcels that left are worth {expected}",
        )
    return inv


def no_double_capture(ev: Evidence, runs: list[OrderRun]) -> Invariant:
    inv = Invariant("b", "no authorization captured twice")
    for a in ev.authorizations:
        view = ev.orders.get(a["order_id"], {}).get("view")
        parcels_left = (
            sum(_left(ev.parcels.get(ref, [])) for ref in _parcel_refs(view)) if view else 1
        )
        keys = [op["idempotency_key"] for op in a["captures"]]
        inv.expect(
            len(keys) == len(set(keys)) and len(keys) <= max(1, parcels_left),
            f"{a['id']} of {a['order_id']}: {len(keys)} captures for {parcels_left} parcel(s)",
        )
        inv.expect(
            _sum(a["captures"]) <= Decimal(a["amount"]),
            f"{a['id']}: captured {_sum(a['captures'])} of {a['amount']} authorized",
        )
    return inv


def closed_orders_hold_no_money(ev: Evidence, runs: list[OrderRun]) -> Invariant:
    inv = Invariant("b", "cancelled/failed voided or refunded; no hold left on a closed order")
    auths = _auths_by_order(ev)
    for oid, row in sorted(ev.orders.items()):
        status = row["status"]
        if status not in CLOSED:
            continue
        for a in auths.get(oid, []):
            captured, refunded = _sum(a["captures"]), _sum(a["refunds"])
            open_hold = not a["voids"] and captured < Decimal(a["amount"])
            inv.expect(not open_hold, f"{oid} ({status}): {a['id']} still holds money")
            if status in ("CANCELLED", "FAILED", "REFUNDED"):
                inv.expect(
                    captured == refunded,
                    f"{oid} ({status}): {a['id']} captured {captured}, refunded {refunded}",
                )
    return inv


def read_model_payments_match_gateway(ev: Evidence, runs: list[OrderRun]) -> Invariant:
    inv = Invariant("b", "read model payments = gateway; no authorization unknown to its order")
    ledger = {a["id"]: a for a in ev.authorizations}
    recorded: set[str] = set()
    for oid, row in sorted(ev.orders.items()):
        for p in row["view"]["payments"]:
            a = ledger.get(p["authorization_id"])
            if a is None:
                continue
            recorded.add(a["id"])
            inv.expect(
                Decimal(p["captured"]) == _sum(a["captures"]),
                f"{oid}: {a['id']} captured {p['captured']} in the read model, "
                f"{_sum(a['captures'])} at the gateway",
            )
    for a in ev.authorizations:
        inv.expect(a["id"] in recorded, f"{a['order_id']}: {a['id']} is not in the order")
    return inv


# ---- (c) stock -------------------------------------------------------------------------


def stock_conserved(ev: Evidence, runs: list[OrderRun]) -> Invariant:
    inv = Invariant("c", "on hand + shipped = start + received; reserved = held, <= on hand")
    for place, (on_hand, reserved) in sorted(ev.stock.items()):
        start = ev.baseline.get(place, 0)
        received = ev.received.get(place, 0)
        shipped = ev.shipped.get(place, 0)
        held = ev.held.get(place, 0)
        where = f"{place[1]} in {place[0]}"
        inv.expect(
            on_hand + shipped == start + received,
            f"{where}: on hand {on_hand} + shipped {shipped} != start {start} + "
            f"received {received}",
        )
        inv.expect(reserved == held, f"{where}: reserved {reserved}, reservations hold {held}")
        inv.expect(0 <= reserved <= on_hand, f"{where}: reserved {reserved} of {on_hand} on hand")
    return inv


def _units_left(ev: Evidence, view: dict[str, Any]) -> dict[str, int]:
    split = [s for s in view["shipments"] if s.get("shipment_no")]
    units: Counter[str] = Counter()
    if not split:
        if _left(ev.parcels.get(view["order_id"], [])):
            units.update({ln["sku"]: ln["quantity"] for ln in view["lines"]})
    for s in split:
        if _left(ev.parcels.get(s["shipment_no"], [])):
            units.update(s["lines"])
    return dict(units)


def units_follow_parcels(ev: Evidence, runs: list[OrderRun]) -> Invariant:
    inv = Invariant("c", "units shipped = units in parcels that left; closed orders hold none")
    for oid, row in sorted(ev.orders.items()):
        units = ev.order_units.get(oid, {"held": {}, "shipped": {}})
        shipped = {k: v for k, v in units.get("shipped", {}).items() if v}
        expected = _units_left(ev, row["view"])
        inv.expect(shipped == expected, f"{oid}: shipped {shipped}, parcels that left {expected}")
        if row["status"] in CLOSED:
            held = {k: v for k, v in units.get("held", {}).items() if v}
            inv.expect(not held, f"{oid} ({row['status']}) still holds {held}")
    return inv


# ---- (d) email -------------------------------------------------------------------------


def no_email_twice(ev: Evidence, runs: list[OrderRun]) -> Invariant:
    inv = Invariant("d", "no email sent twice (Message-ID), none written twice")
    copies = Counter(m["message_id"] for m in ev.messages)
    resent = sorted((str(mid), n) for mid, n in copies.items() if n > 1)
    extra = sum(n - 1 for _, n in resent)
    # The email in flight when a worker is SIGKILLed between the server's "250 OK" and the
    # commit that marks it sent goes out again, with the same Message-ID: at most one a kill.
    allowed = extra <= ev.worker_kills
    inv.checked += len(copies)
    for mid, n in resent:
        inv.expect(allowed, f"{mid}: received {n} times")
    if resent and allowed:
        inv.note = f"{extra} in flight at a worker kill sent again"
    kinds = Counter((m["order_id"], m["kind"]) for m in ev.outbox if m["kind"] in ONCE)
    for (oid, kind), n in sorted(kinds.items()):
        inv.expect(n == 1, f"{oid}: {n} '{kind}' emails written")
    return inv


def emails_follow_history(ev: Evidence, runs: list[OrderRun]) -> Invariant:
    inv = Invariant("d", "every email written stems from a step in the workflow's history")
    steps: Counter[tuple[str, str]] = Counter()
    for oid, wf in ev.workflows.items():
        for _, entry in wf.digest.get("history", []):
            what, _, kind = entry.partition(":")
            if what in ("notified", "alert"):
                steps[(oid, kind if what == "notified" else f"alert-{kind}")] += 1
    written: Counter[tuple[str, str]] = Counter((m["order_id"], m["kind"]) for m in ev.outbox)
    for (oid, kind), n in sorted(written.items()):
        # Purchase orders write emails too; only orders have a history to hold them against.
        if oid in ev.workflows:
            had = steps[(oid, kind)]
            inv.expect(n <= had, f"{oid}: {n} '{kind}' emails, {had} in its history")
    return inv


def every_email_sent(ev: Evidence, runs: list[OrderRun]) -> Invariant:
    inv = Invariant("d", "every email written was sent and received")
    received = {m["message_id"] for m in ev.messages}
    for m in ev.outbox:
        mid = f"{message_id(m['key'])}@{MESSAGE_ID_DOMAIN}"
        inv.expect(
            m["status"] == "sent" and mid in received,
            f"{m['key']}: {m['status']}, {'received' if mid in received else 'not received'}",
        )
    return inv


# ---- (e) orders ------------------------------------------------------------------------


def no_order_lost(ev: Evidence, runs: list[OrderRun]) -> Invariant:
    inv = Invariant("e", "every accepted order has a workflow and a read-model row")
    for run in runs:
        inv.expect(
            bool(run.order_id),
            f"order {run.plan.index} ({run.kind}) never accepted: {'; '.join(run.notes)}",
        )
        if run.order_id:
            inv.expect(run.order_id in ev.intake, f"{run.order_id} answered but not recorded")
    for oid in sorted(ev.intake):
        wf = ev.workflows.get(oid)
        inv.expect(wf is not None and wf.status != "MISSING", f"{oid}: no workflow")
        inv.expect(oid in ev.orders, f"{oid}: no read-model row")
    for oid in sorted(set(ev.orders) - set(ev.intake)):
        inv.expect(False, f"{oid}: in the read model, never accepted")
    keys = Counter(k for keys in ev.intake.values() for k in keys if k.startswith("idem:"))
    inv.expect(
        len(keys) == len(runs) or not runs,
        f"{len(keys)} idempotency keys for {len(runs)} planned orders",
    )
    return inv
