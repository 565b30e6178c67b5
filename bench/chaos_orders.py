"""The orders of a chaos run: a seeded mix, each driven through the API like a client would.

Every call that changes something carries an Idempotency-Key and is retried through crashes
and outages (same key, same body) until it gets an answer; every answer is kept, to hold it
against the order's final state. What an order may legitimately end as follows from the
answers it got.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

import httpx
import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.status import MAIN_PATH, OrderStatus
from orderflow.db import libpq_url

# SKUs only this run uses: one per warehouse, so an order of both ships as two parcels, and
# one with no stock, so its orders wait for the run's purchase order.
SKU_SHA = "CHAOS-SHA"
SKU_RTM = "CHAOS-RTM"
SKU_SCARCE = "CHAOS-SCARCE"
SUPPLIER = "SUP-HZTEA"
SCARCE_WAREHOUSE = "WH-SHA"
# Demo SKUs stocked in both warehouses, for orders that ship as one parcel.
COMMON_SKUS = ("SKU-TEA-001", "SKU-TEA-002", "SKU-CUP-001", "SKU-ACC-003", "SKU-SNK-001")
CUSTOMERS = 20

S_COMPLETED = frozenset({"COMPLETED"})


class Kind(StrEnum):
    """What happens to an order, and so how it must end."""

    CARD = "card"
    FLAKY_CARD = "flaky card"
    SPLIT = "two warehouses"
    EDITED = "edited"
    CANCELLED = "cancelled"
    CANCELLED_PACKED = "cancelled when packed"
    PAY_LATER = "pay later, paid"
    # The same bank payment recorded from two places at once (two keys, one reference).
    PAID_TWICE = "pay later, paid twice at once"
    # The money arrives at the gateway, which tells the API by a webhook.
    TRANSFER = "pay later, by transfer"
    UNPAID = "pay later, unpaid"
    DECLINED = "declined"
    NEW_CARD = "declined, new card"
    BACKORDERED = "backordered"
    LOST = "lost, refunded"


MIX: dict[Kind, int] = {
    Kind.CARD: 24,
    Kind.FLAKY_CARD: 6,
    Kind.SPLIT: 10,
    Kind.EDITED: 10,
    Kind.CANCELLED: 8,
    Kind.CANCELLED_PACKED: 5,
    Kind.PAY_LATER: 8,
    Kind.PAID_TWICE: 4,
    Kind.TRANSFER: 4,
    Kind.UNPAID: 4,
    Kind.DECLINED: 4,
    Kind.NEW_CARD: 5,
    Kind.BACKORDERED: 8,
    Kind.LOST: 4,
}


def prepare_catalog(database_url: str) -> None:
    """Add the run's own SKUs with their stock and supplier (before any process starts)."""
    with psycopg.connect(libpq_url(database_url)) as conn:
        names = {SKU_SHA: "Shanghai-only", SKU_RTM: "Rotterdam-only", SKU_SCARCE: "Scarce"}
        for sku, name in names.items():
            conn.execute(
                "insert into products (sku, name, variant, category, unit_price, currency, active,"
                " safety_stock) values (%s, %s, 'chaos', 'tea', 21.00, 'USD', true, 0)",
                (sku, f"{name} chaos item"),
            )
            conn.execute(
                "insert into supplier_products (supplier_id, sku, unit_cost, currency, pack_size,"
                " preferred) values (%s, %s, 9.00, 'USD', 1, true)",
                (SUPPLIER, sku),
            )
        for sku, warehouse, units in (
            (SKU_SHA, "WH-SHA", 100_000),
            (SKU_RTM, "WH-RTM", 100_000),
            (SKU_SCARCE, SCARCE_WAREHOUSE, 0),
        ):
            conn.execute(
                "insert into stock (sku, warehouse_id, on_hand, reserved) values (%s, %s, %s, 0)",
                (sku, warehouse, units),
            )


@dataclass
class OrderPlan:
    """One order as planned: when it is placed, what it asks for, what happens to it."""

    index: int
    kind: Kind
    at: float
    body: dict[str, Any]
    key: str


@dataclass
class OrderRun:
    """One order as it went: its number, the answers it got, how it may end."""

    plan: OrderPlan
    order_id: str = ""
    total: Decimal = Decimal("0")
    expected: frozenset[str] = S_COMPLETED
    # Lines after an accepted edit, to check the order kept them.
    edited_lines: dict[str, int] | None = None
    notes: list[str] = field(default_factory=list)
    # Every change asked of the order after it was placed, with the answers it got.
    edits: list[Edit] = field(default_factory=list)
    # The gateway's id of the bank transfer that paid it (by transfer only).
    transfer_id: str = ""
    # Set once POST /orders has answered (or the run gave up on it).
    placed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def kind(self) -> Kind:
        return self.plan.kind


def plan_orders(count: int, rate: float, seed: int) -> list[OrderPlan]:
    """`count` orders of the mix, in a seeded order, `1 / rate` seconds apart."""
    rng = random.Random(seed)
    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=count)
    # Every kind at least once when there is room, so a small run still covers the mix.
    if count >= len(MIX):
        missing = [k for k in MIX if k not in kinds]
        for i, k in zip(rng.sample(range(count), len(missing)), missing, strict=True):
            kinds[i] = k
    return [
        OrderPlan(i, kind, i / rate, _body(i, kind, rng), f"chaos-{seed}-{i}")
        for i, kind in enumerate(kinds)
    ]


def _body(i: int, kind: Kind, rng: random.Random) -> dict[str, Any]:
    n = i % CUSTOMERS
    country, city, postal = rng.choice(
        [("CN", "Shanghai", "200001"), ("CN", "Hangzhou", "310000"), ("NL", "Utrecht", "3511")]
    )
    lines = [(sku, rng.randint(1, 2)) for sku in rng.sample(COMMON_SKUS, rng.randint(1, 2))]
    payment: dict[str, str] = {"method": "card", "token": "tok_ok"}
    if kind == Kind.SPLIT:
        lines = [(SKU_SHA, rng.randint(1, 2)), (SKU_RTM, rng.randint(1, 2))]
    elif kind == Kind.BACKORDERED:
        lines = [(SKU_SCARCE, rng.randint(1, 2))]
    elif kind == Kind.FLAKY_CARD:
        payment["token"] = "tok_flaky"
    elif kind in (Kind.DECLINED, Kind.NEW_CARD):
        payment["token"] = "tok_decline"
    elif kind in (Kind.PAY_LATER, Kind.UNPAID, Kind.PAID_TWICE):
        payment = {"method": rng.choice(["bank_transfer", "invoice"])}
    elif kind == Kind.TRANSFER:
        payment = {"method": "bank_transfer"}
    elif kind == Kind.LOST:
        postal = "00000"
    return {
        "customer": {
            "id": f"C-CHAOS-{n:02d}",
            "name": f"Chaos Customer {n}",
            "email": f"chaos{n}@example.com",
        },
        "channel": rng.choice(["web", "mobile", "marketplace"]),
        "lines": [{"sku": s, "quantity": q} for s, q in lines],
        "ship_to": {
            "name": f"Chaos Customer {n}",
            "line1": f"{i} Long Road",
            "city": city,
            "postal_code": postal,
            "country": country,
        },
        "delivery": "express" if country == "CN" and rng.random() < 0.2 else "standard",
        "payment": payment,
    }


CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class Attempt:
    """One try of a call and what came back; status 0 when no answer came."""

    status: int
    code: str = ""
    replayed: bool = False
    text: str = ""
    at: float = field(default_factory=time.time)

    @property
    def try_again(self) -> bool:
        """No answer, a 5xx, or the same key still running: the call may or may not have acted,
        and only a retry with the same key can tell."""
        return self.status == 0 or self.status >= 500 or self.code == "request_in_progress"

    @property
    def done(self) -> bool:
        return 200 <= self.status < 300

    def __str__(self) -> str:
        if self.status == 0:
            return "no answer"
        shown = f"{self.status} {self.code}".strip()
        return shown + (" (replayed)" if self.replayed else "")


class Answer:
    """What a call finally got, every try on the way, and whether an earlier try may have acted
    unseen."""

    def __init__(self, response: httpx.Response | None, attempts: list[Attempt]) -> None:
        self.response = response
        self.attempts = attempts

    @property
    def uncertain(self) -> bool:
        return any(a.try_again for a in self.attempts)

    @property
    def status(self) -> int:
        return self.response.status_code if self.response is not None else 0

    def json(self) -> Any:
        return self.response.json() if self.response is not None else None


@dataclass
class Edit:
    """A change a client asked of an order, with every answer it got for it."""

    order_id: str
    what: str
    key: str
    body: dict[str, Any]
    attempts: list[Attempt]


class EditHold:
    """Holds edits back for a moment when a fault asks, so that it meets several in flight."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self.waiting = 0

    async def passage(self) -> None:
        if not self._open.is_set():
            self.waiting += 1
            await self._open.wait()

    async def gather(self, want: int, within: float) -> int:
        """Hold edits until `want` wait (or `within` seconds pass with at least one, or twice
        that with none), then let them all go; returns how many were held."""
        self.waiting = 0
        self._open.clear()
        began = time.monotonic()
        try:
            while self.waiting < want:
                waited = time.monotonic() - began
                if waited > 2 * within or (self.waiting and waited > within):
                    break
                await asyncio.sleep(0.02)
            return self.waiting
        finally:
            self._open.set()


def _attempt(r: httpx.Response) -> Attempt:
    code = ""
    if r.status_code >= 300:
        try:
            error = r.json().get("error")
            code = str(error.get("code", "")) if isinstance(error, dict) else ""
        except (ValueError, AttributeError):
            code = ""
    replayed = r.headers.get("Idempotent-Replayed", "").lower() == "true"
    return Attempt(r.status_code, code, replayed, r.text[:300])


class ApiCaller:
    """Calls the API through its crashes: no answer, a 5xx or `request_in_progress` is tried
    again with the same Idempotency-Key, which every call that changes something carries."""

    def __init__(self, client: httpx.AsyncClient, patience: float) -> None:
        self.client = client
        self.patience = patience
        self.calls = 0
        self.retries = 0
        self.hold = EditHold()
        # Edits sent and not yet answered, right now.
        self.edits_in_flight = 0

    async def call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        key: str | None = None,
        edit: bool = False,
    ) -> Answer:
        """The first answer that is not an outage; None inside after `patience` seconds.
        An `edit` may be held back by a fault that wants edits in flight."""
        if method in CHANGING and not key:
            raise ValueError(f"{method} {path} needs an Idempotency-Key")
        headers = {"Idempotency-Key": key} if key else {}
        if edit:
            await self.hold.passage()
        deadline = time.monotonic() + self.patience
        pause = 0.2
        attempts: list[Attempt] = []
        self.calls += 1
        while True:
            if edit:
                self.edits_in_flight += 1
            try:
                r = await self.client.request(method, path, json=body, headers=headers)
                attempts.append(_attempt(r))
                if not attempts[-1].try_again:
                    return Answer(r, attempts)
            except httpx.TransportError:
                attempts.append(Attempt(0))
            finally:
                if edit:
                    self.edits_in_flight -= 1
            self.retries += 1
            if time.monotonic() > deadline:
                return Answer(None, attempts)
            await asyncio.sleep(pause)
            pause = min(2.0, pause * 1.5)


@dataclass
class Seen:
    status: str
    exception: str


class StatusBoard:
    """Every order's status as the read model has it, read in one query twice a second."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.seen: dict[str, Seen] = {}
        # When an order last changed, as far as the board could see.
        self.changed_at = time.monotonic()

    async def run(self) -> None:
        while True:
            try:
                async with self.sessions() as s:
                    rows = await s.execute(
                        text(
                            "select order_id, status, coalesce(view->>'open_exception', '')"
                            " from orders"
                        )
                    )
                seen = {oid: Seen(st, ex) for oid, st, ex in rows}
                if seen != self.seen:
                    self.changed_at = time.monotonic()
                self.seen = seen
            except Exception:
                # PostgreSQL is not a fault of this run, but a hiccup must not end the board.
                pass
            await asyncio.sleep(0.5)

    async def wait(self, order_id: str, ok: Callable[[Seen], bool], within: float) -> Seen | None:
        """The first state `ok` accepts, or None after `within` seconds."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            seen = self.seen.get(order_id)
            if seen is not None and ok(seen):
                return seen
            await asyncio.sleep(0.25)
        return None

    def open_orders(self, final: Mapping[str, frozenset[str]]) -> int:
        """Orders not yet in a status they may end in."""
        return sum(1 for oid, s in self.seen.items() if s.status not in final.get(oid, S_COMPLETED))


def at_or_after(status: str) -> frozenset[str]:
    """`status` and every status after it on the main path: a step aimed at one status that
    finds the order further along comes too late to catch it there."""
    return frozenset(s.value for s in MAIN_PATH[MAIN_PATH.index(OrderStatus(status)) :])


class OrderDriver:
    """Places each order at its time and does to it what its kind says."""

    def __init__(
        self,
        api: ApiCaller,
        board: StatusBoard,
        step_seconds: float,
        gateway: httpx.AsyncClient | None = None,
    ) -> None:
        self.api = api
        self.board = board
        self.step_seconds = step_seconds
        # The payment gateway's own admin routes, where a customer's bank transfer arrives.
        self.gateway = gateway

    async def drive(self, run: OrderRun, started: float) -> None:
        """Place the order, then act on it; never raises, notes what went wrong instead."""
        await asyncio.sleep(max(0.0, started + run.plan.at - time.monotonic()))
        try:
            await self._drive(run)
        except Exception as exc:
            run.notes.append(f"driver error: {type(exc).__name__}: {exc}")
        finally:
            run.placed.set()

    async def _drive(self, run: OrderRun) -> None:
        answer = await self.api.call("POST", "/orders", run.plan.body, key=run.plan.key)
        if answer.status not in (200, 201):
            run.notes.append(f"POST /orders answered {answer.status}: {_text(answer)}")
            return
        view = answer.json()
        run.order_id = view["order_id"]
        run.total = Decimal(view["totals"]["total"])
        run.placed.set()
        step = {
            Kind.UNPAID: self._leave_unpaid,
            Kind.DECLINED: self._let_fail,
            Kind.NEW_CARD: self._new_card,
            Kind.PAY_LATER: self._pay,
            Kind.PAID_TWICE: self._pay_twice,
            Kind.TRANSFER: self._transfer,
            Kind.EDITED: self._edit,
            Kind.CANCELLED: self._cancel,
            Kind.CANCELLED_PACKED: self._cancel,
            Kind.LOST: self._refund_lost,
        }.get(run.kind)
        if step is not None:
            await step(run)

    async def _send(
        self, run: OrderRun, what: str, method: str, path: str, body: dict[str, Any], tag: str = ""
    ) -> Answer:
        """An edit of the order under a key of its own; every answer is kept with the run."""
        key = f"{run.plan.key}-{what.replace(' ', '-')}{tag}"
        answer = await self.api.call(method, path, body, key=key, edit=True)
        run.edits.append(Edit(run.order_id, what, key, body, answer.attempts))
        return answer

    async def _until(self, run: OrderRun, ok: Callable[[Seen], bool], what: str) -> Seen | None:
        seen = await self.board.wait(run.order_id, ok, self.step_seconds)
        if seen is None:
            run.notes.append(f"never saw {what}")
        return seen

    async def _leave_unpaid(self, run: OrderRun) -> None:
        run.expected = frozenset({"AWAITING_PAYMENT"})

    async def _let_fail(self, run: OrderRun) -> None:
        run.expected = frozenset({"FAILED"})

    def _payment(self, run: OrderRun) -> dict[str, Any]:
        return {"amount": str(run.total), "reference": f"bank-{run.plan.key}"}

    async def _pay(self, run: OrderRun) -> None:
        if await self._until(run, lambda s: s.status == "AWAITING_PAYMENT", "AWAITING_PAYMENT"):
            path = f"/orders/{run.order_id}/payments"
            answer = await self._send(run, PAYMENT, "POST", path, self._payment(run))
            self._expect_done(run, answer, "payment", frozenset({"AWAITING_PAYMENT"}))

    async def _pay_twice(self, run: OrderRun) -> None:
        if await self._until(run, lambda s: s.status == "AWAITING_PAYMENT", "AWAITING_PAYMENT"):
            path = f"/orders/{run.order_id}/payments"
            body = self._payment(run)
            answers = await asyncio.gather(
                self._send(run, PAYMENT, "POST", path, body, tag="-a"),
                self._send(run, PAYMENT, "POST", path, body, tag="-b"),
            )
            # Paid if either got through; both refused leaves it waiting.
            if not any(a.status == 200 for a in answers):
                for a in answers:
                    self._expect_done(run, a, "payment", frozenset({"AWAITING_PAYMENT"}))

    async def _transfer(self, run: OrderRun) -> None:
        if self.gateway is None:
            run.expected = frozenset({"AWAITING_PAYMENT"})
            return
        if await self._until(run, lambda s: s.status == "AWAITING_PAYMENT", "AWAITING_PAYMENT"):
            body = {"reference": run.order_id, "amount": str(run.total), "currency": "USD"}
            run.transfer_id = await _send_transfer(self.gateway, body, self.step_seconds)
            if not run.transfer_id:
                run.notes.append("the gateway never took the transfer")
                run.expected = frozenset({"AWAITING_PAYMENT"})

    async def _new_card(self, run: OrderRun) -> None:
        if await self._until(run, lambda s: s.status == "AWAITING_PAYMENT", "AWAITING_PAYMENT"):
            body = {"method": "card", "token": "tok_ok"}
            path = f"/orders/{run.order_id}/payment-method"
            answer = await self._send(run, NEW_METHOD, "PUT", path, body)
            self._expect_done(run, answer, "new card", frozenset({"FAILED"}))

    async def _edit(self, run: OrderRun) -> None:
        seen = await self._until(run, lambda s: s.status in at_or_after("CONFIRMED"), "CONFIRMED")
        if seen is None or seen.status != "CONFIRMED":
            run.notes.append("edit skipped: the order was past CONFIRMED")
            return
        lines = {ln["sku"]: ln["quantity"] for ln in run.plan.body["lines"]}
        first = next(iter(lines))
        lines[first] += 1
        body = {"lines": [{"sku": s, "quantity": q} for s, q in lines.items()]}
        answer = await self._send(run, LINES, "PATCH", f"/orders/{run.order_id}", body)
        if answer.status == 200:
            run.edited_lines = lines
        elif not answer.uncertain:
            run.notes.append(f"edit answered {answer.status}: {_text(answer)}")

    async def _cancel(self, run: OrderRun) -> None:
        wanted = "PACKED" if run.kind == Kind.CANCELLED_PACKED else "CONFIRMED"
        seen = await self._until(run, lambda s: s.status in at_or_after(wanted), wanted)
        if seen is None:
            run.expected = frozenset({"CANCELLED", "COMPLETED"})
            return
        path = f"/orders/{run.order_id}/cancel"
        answer = await self._send(run, CANCEL, "POST", path, {"reason": "chaos"})
        if answer.status == 200:
            run.expected = frozenset({"CANCELLED"})
        elif answer.status == 409 and not answer.uncertain:
            # Refused: the parcel had left; the order goes on to the end.
            run.expected = S_COMPLETED
        else:
            run.expected = frozenset({"CANCELLED", "COMPLETED"})

    async def _refund_lost(self, run: OrderRun) -> None:
        run.expected = frozenset({"REFUNDED"})
        if await self._until(run, lambda s: bool(s.exception), "the carrier exception"):
            body = {"action": "refund", "note": "lost in transit"}
            path = f"/orders/{run.order_id}/exception-actions"
            answer = await self._send(run, REFUND, "POST", path, body)
            self._expect_done(run, answer, "refund", frozenset({"SHIPPED"}))

    @staticmethod
    def _expect_done(run: OrderRun, answer: Answer, what: str, otherwise: frozenset[str]) -> None:
        """A step refused for sure leaves the order where it was; an unclear one may have acted."""
        if answer.status == 200:
            return
        run.expected = run.expected | otherwise if answer.uncertain else otherwise
        lost = " after a lost answer" if answer.uncertain else ""
        run.notes.append(f"{what} answered {answer.status}{lost}: {_text(answer)}")


# What an edit asks, as the invariants name it.
LINES = "lines"
CANCEL = "cancel"
PAYMENT = "payment"
NEW_METHOD = "payment method"
REFUND = "refund"


async def _send_transfer(gateway: httpx.AsyncClient, body: dict[str, Any], patience: float) -> str:
    """Money arrives at the gateway: booked there once, however often this is tried. The
    gateway's admin route takes no key, so before a retry it is asked whether the first try
    got through."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        try:
            r = await gateway.post("/_admin/transfers", json=body)
            if r.status_code == 201:
                return str(r.json()["transfer_id"])
        except httpx.TransportError:
            pass
        await asyncio.sleep(1.0)
        try:
            listed = (await gateway.get("/_admin/transfers")).json()["transfers"]
            mine = [t for t in listed if t["reference"] == body["reference"]]
            if mine:
                return str(mine[0]["transfer_id"])
        except (httpx.TransportError, ValueError, KeyError):
            pass
    return ""


async def receive_scarce(api: ApiCaller, runs: list[OrderRun], seed: int) -> str:
    """Order and receive exactly the units the backordered orders wait for, once every order
    has been placed; the receipt serves them. Both calls carry an Idempotency-Key, so a retry
    books nothing twice."""
    await asyncio.gather(*(r.placed.wait() for r in runs))
    units = sum(
        ln["quantity"]
        for r in runs
        if r.order_id and r.kind == Kind.BACKORDERED
        for ln in r.plan.body["lines"]
    )
    if not units:
        return "no backordered units"
    lines = [{"sku": SKU_SCARCE, "quantity": units}]
    po = await api.call(
        "POST",
        "/purchase-orders",
        {"supplier_id": SUPPLIER, "warehouse_id": SCARCE_WAREHOUSE, "lines": lines},
        key=f"chaos-po-{seed}",
    )
    if po.status != 201:
        return f"purchase order answered {po.status}: {_text(po)}"
    po_id = po.json()["po_id"]
    receipt = await api.call(
        "POST", f"/purchase-orders/{po_id}/receipts", {"lines": lines}, key=f"chaos-in-{seed}"
    )
    if receipt.status != 200 and not receipt.uncertain:
        return f"receipt answered {receipt.status}: {_text(receipt)}"
    return f"{po_id}: {units} x {SKU_SCARCE} received"


def _text(answer: Answer) -> str:
    return answer.response.text[:200] if answer.response is not None else "no answer"
