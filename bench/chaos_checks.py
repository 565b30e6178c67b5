"""The invariants a chaos run must leave standing (§10): each a pure function of the evidence."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from itertools import groupby, pairwise
from typing import Any

from activities.outbox import message_id
from bench.chaos_evidence import Crash, Evidence, digest
from bench.chaos_orders import (
    CANCEL,
    LINES,
    NEW_METHOD,
    PAYMENT,
    REFUND,
    Attempt,
    Edit,
    OrderRun,
)
from bench.chaos_stack import POSTGRES
from models.status import TERMINAL
from providers.mail import MESSAGE_ID_DOMAIN

ZERO = Decimal("0")
CLOSED = frozenset(s.value for s in TERMINAL)
PAID_OUTSIDE = frozenset({"bank_transfer", "invoice"})
# Emails an order sends at most once, whatever happens to it.
ONCE = frozenset({"confirmed", "shipped", "delivered", "cancelled"})
# The payment record of exchange credit: goods sent back, no money.
CREDIT = "exchange:"
# A payment record that is money taken for the order (a kept overpayment is "refund_due").
TAKEN = frozenset({"paid", "captured", "partly_refunded", "refunded"})
# The processes between an SMTP server's "250 OK" and the commit that marks the email sent:
# killing one of them then sends that email again.
SENDERS = frozenset({"worker", POSTGRES})
# Clocks of two processes on one machine, and a kill's own latency.
SLACK_SECONDS = 1.0


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
        payments_booked_once,
        books_balance,
        closed_orders_hold_no_money,
        read_model_payments_match_gateway,
        stock_conserved,
        units_follow_parcels,
        no_email_twice,
        resent_keeps_message_id,
        emails_follow_history,
        every_email_sent,
        no_order_lost,
        answers_agree,
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


def _reference(detail: str) -> str:
    """The reference of a `payment_received` history entry: "<amount> ref <reference>"."""
    return detail.rpartition(" ref ")[2].strip()


def payments_booked_once(ev: Evidence, runs: list[OrderRun]) -> Invariant:
    inv = Invariant("b", "each payment reference booked once; no authorization captured twice")
    auths = _auths_by_order(ev)
    for oid, row in sorted(ev.orders.items()):
        payments = row["view"]["payments"]
        for booking, n in sorted(Counter(p["authorization_id"] for p in payments).items()):
            statuses = ", ".join(p["status"] for p in payments if p["authorization_id"] == booking)
            inv.expect(n == 1, f"{oid}: {booking} booked {n} times ({statuses})")
        entries = ev.history_detail.get(oid, [])
        refs = Counter(_reference(d) for kind, d in entries if kind == "payment_received")
        for ref, n in sorted(refs.items()):
            inv.expect(n == 1, f"{oid}: {n} payment_received entries for ref {ref!r}")
        if row["view"]["payment_method"] in PAID_OUTSIDE:
            paid = [p["authorization_id"] for p in payments if p["status"] in TAKEN]
            inv.expect(len(paid) <= 1, f"{oid}: paid {len(paid)} times ({', '.join(paid)})")
        captured_from = [a["id"] for a in auths.get(oid, []) if a["captures"]]
        inv.expect(
            len(captured_from) <= 1,
            f"{oid}: captured from {len(captured_from)} authorizations: "
            + ", ".join(captured_from),
        )
    for t in ev.transfers:
        oid, tid = t["reference"], t["transfer_id"]
        target = ev.orders.get(oid)
        if target is None:
            inv.expect(False, f"transfer {tid} names no order: {oid!r}")
            continue
        payments = target["view"]["payments"]
        booked = [p for p in payments if p["authorization_id"].endswith(f":{tid}")]
        inv.expect(len(booked) <= 1, f"{oid}: transfer {tid} booked {len(booked)} times")
        inv.expect(
            bool(booked) or not t["delivered"],
            f"{oid}: transfer {tid} of {t['amount']} delivered, booked nowhere",
        )
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


def _kept(ev: Evidence, row: dict[str, Any]) -> Decimal:
    """What the customer kept, from the order's lines and parcels when its view does not say:
    the parcels that left, less those refunded; nothing once the whole order was refunded."""
    view = row["view"]
    if row["status"] == "REFUNDED":
        return ZERO
    split = [s for s in view["shipments"] if s.get("shipment_no")]
    if split:
        refunded = sum(
            (Decimal(s["amount"] or 0) for s in split if s["status"] == "refunded"), ZERO
        )
        return _shipped_value(ev, view) - refunded
    if any(s["status"] == "refunded" for s in view["shipments"]):
        return ZERO
    return _shipped_value(ev, view)


def _outside_gateway(view: dict[str, Any]) -> tuple[Decimal, Decimal]:
    """Money of a pay-later order, received and sent back by hand, as its payments record it
    (an overpayment kept to send back counts as received)."""
    captured = refunded = ZERO
    for p in view["payments"]:
        if p["authorization_id"].startswith(CREDIT):
            continue
        took = Decimal(p["captured"])
        captured += took
        if p["status"] == "refunded":
            refunded += max(Decimal(p.get("refunded") or 0), took)
    return captured, refunded


def books_balance(ev: Evidence, runs: list[OrderRun]) -> Invariant:
    inv = Invariant("b", "after-sales books: captured - refunded = value kept = gateway's ledger")
    auths = _auths_by_order(ev)
    with_books = 0
    for oid, row in sorted(ev.orders.items()):
        view = row["view"]
        if view["payment_method"] in PAID_OUTSIDE:
            captured, refunded = _outside_gateway(view)
            where = "received"
        else:
            captured = sum((_sum(a["captures"]) for a in auths.get(oid, [])), ZERO)
            refunded = sum((_sum(a["refunds"]) for a in auths.get(oid, [])), ZERO)
            where = "at the gateway"
        goods = _kept(ev, row)
        inv.expect(
            captured - refunded == goods,
            f"{oid} ({row['status']}): captured {captured} - refunded {refunded} {where}, "
            f"goods kept worth {goods}",
        )
        books = view.get("books")
        if not books:
            continue
        with_books += 1
        said = {k: Decimal(str(books[k])) for k in ("captured", "refunded", "kept")}
        inv.expect(
            (said["captured"], said["refunded"]) == (captured, refunded),
            f"{oid}: its books say captured {said['captured']}, refunded {said['refunded']}; "
            f"{where} {captured}, {refunded}",
        )
        inv.expect(
            said["kept"] == captured - refunded == said["captured"] - said["refunded"],
            f"{oid}: its books say kept {said['kept']}; captured - refunded {where} "
            f"{captured - refunded}",
        )
    inv.note = (
        f"books of {with_books} orders' views held against the ledger"
        if with_books
        else "no books in the views: kept from the parcels that left, less refunds"
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


def _received_at(m: dict[str, Any]) -> float:
    return datetime.fromisoformat(m["received_at"]).timestamp()


def _resend_cause(crashes: list[Crash], used: set[int], before: float, after: float) -> str:
    """The crash of a sender between two copies of one email, each crash taken once: only the
    email in flight when it died goes out again."""
    for i, c in enumerate(crashes):
        if (
            i not in used
            and c.processes & SENDERS
            and before - SLACK_SECONDS <= c.began <= after + SLACK_SECONDS
        ):
            used.add(i)
            return c.cause
    return ""


def no_email_twice(ev: Evidence, runs: list[OrderRun]) -> Invariant:
    inv = Invariant(
        "d", "an email sent twice only after its sender crashed, or a send it logged as failed"
    )
    copies: dict[str, list[float]] = defaultdict(list)
    for m in ev.messages:
        copies[str(m["message_id"])].append(_received_at(m))
    crashes = sorted(ev.crashes, key=lambda c: c.began)
    # Sends the dispatcher itself saw fail (an SMTP answer that timed out, say) and tried again:
    # the server may have taken the first one all the same. Each explains one resend.
    failed = {
        f"{message_id(m['key'])}@{MESSAGE_ID_DOMAIN}": int(m.get("attempts", "1")) - 1
        for m in ev.outbox
        if m.get("last_error")
    }
    used: set[int] = set()
    causes: Counter[str] = Counter()
    for mid, times in sorted(copies.items()):
        times.sort()
        inv.checked += 1
        for before, after in pairwise(times):
            cause = _resend_cause(crashes, used, before, after)
            if not cause and failed.get(mid, 0) > 0:
                failed[mid] -= 1
                cause = "a send that failed and was retried"
            if cause:
                causes[cause] += 1
            else:
                inv.expect(
                    False,
                    f"{mid}: received again {after - before:.1f} s later, with no crash of the "
                    "worker or PostgreSQL in between (or more resends than crashes)",
                )
    if causes:
        inv.note = "resent, same Message-ID: " + ", ".join(
            f"{n} after {cause}" for cause, n in sorted(causes.items())
        )
    kinds = Counter((m["order_id"], m["kind"]) for m in ev.outbox if m["kind"] in ONCE)
    for (oid, kind), n in sorted(kinds.items()):
        inv.expect(n == 1, f"{oid}: {n} '{kind}' emails written")
    return inv


def resent_keeps_message_id(ev: Evidence, runs: list[OrderRun]) -> Invariant:
    inv = Invariant("d", "an email sent again keeps its Message-ID (one id per email)")
    written = {f"{message_id(m['key'])}@{MESSAGE_ID_DOMAIN}": m for m in ev.outbox}
    ids: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for m in ev.messages:
        mid = str(m["message_id"])
        headers = m.get("headers", {})
        order, kind = headers.get("X-Orderflow-Order", ""), headers.get("X-Orderflow-Kind", "")
        inv.expect(mid in written, f"{order}: '{kind}' email received as {mid}, no outbox row's")
        ids[(order, kind, m["to"], m["subject"], m["text"])].add(mid)
    for (order, kind, to, _, _), found in sorted(ids.items()):
        inv.expect(
            len(found) == 1,
            f"{order}: the same '{kind}' email to {to} received under {len(found)} "
            f"Message-IDs: {', '.join(sorted(found))}",
        )
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


# ---- (f) answers -----------------------------------------------------------------------


def _applied(ev: Evidence, row: dict[str, Any], edit: Edit) -> bool:
    """Whether the order's final state (and history) shows the change the edit asked for."""
    view = row["view"]
    kinds = {kind for kind, _ in ev.history_detail.get(edit.order_id, [])}
    if edit.what == LINES:
        asked = {ln["sku"]: ln["quantity"] for ln in edit.body["lines"]}
        return {ln["sku"]: ln["quantity"] for ln in view["lines"]} == asked
    if edit.what == CANCEL:
        return row["status"] == "CANCELLED" or "status:CANCELLED" in kinds
    if edit.what == PAYMENT:
        ref = edit.body["reference"]
        return any(
            p["authorization_id"].endswith(f":{ref}") and p["status"] in TAKEN
            for p in view["payments"]
        )
    if edit.what == NEW_METHOD:
        return "payment_method_changed" in kinds
    if edit.what == REFUND:
        return (
            row["status"] == "REFUNDED"
            or "exception_refund" in kinds
            or any(s["status"] == "refunded" for s in view["shipments"])
        )
    raise ValueError(f"no rule for an edit of {edit.what}")


def _contradicted(row: dict[str, Any], edit: Edit, refusal: Attempt) -> bool:
    """A refusal whose reason the final state belies: the run pays an order only once it shows
    AWAITING_PAYMENT, so "not awaiting payment" for one that still awaits it is untrue."""
    return (
        edit.what == PAYMENT
        and refusal.code == "not_awaiting_payment"
        and row["status"] == "AWAITING_PAYMENT"
    )


def _chain(attempts: list[Attempt]) -> str:
    """The answers in order, a run of the same one shown once with its count."""
    runs = [(str(a), len(list(same))) for a, same in groupby(attempts, key=str)]
    return " -> ".join(a if n == 1 else f"{a} x{n}" for a, n in runs)


def answers_agree(ev: Evidence, runs: list[OrderRun]) -> Invariant:
    inv = Invariant("f", "every answer a client got agrees with the order's final state")
    answers: Counter[str] = Counter()
    for run in runs:
        for edit in run.edits:
            row = ev.orders.get(edit.order_id)
            if row is None or not edit.attempts:
                continue
            applied = _applied(ev, row, edit)
            said = _chain(edit.attempts)
            where = f"{edit.order_id}: {edit.what} ({edit.key}) answered {said}"
            answers.update(str(a) for a in edit.attempts)
            for a in edit.attempts:
                if a.done:
                    inv.expect(applied, f"{where}; {a} for a change not in the final state")
                elif not a.try_again:
                    inv.expect(
                        not applied, f"{where}; refused ({a}) though applied: {a.text[:160]}"
                    )
                    inv.expect(
                        not _contradicted(row, edit, a),
                        f"{where}; refused ({a}) though the order ends {row['status']}: "
                        f"{a.text[:160]}",
                    )
            if applied:
                # "Try again" is true only if the retry with the same key then said it was done.
                inv.expect(edit.attempts[-1].done, f"{where}; applied, never answered that it was")
    inv.note = ", ".join(f"{n} x {a}" for a, n in answers.most_common(6))
    return inv
