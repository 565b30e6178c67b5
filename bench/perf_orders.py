"""Orders of the performance run: its own SKUs, the bodies it posts, and placing them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg

from bench.perf_watch import Arrivals, Feed, ReadModel
from orderflow.db import libpq_url

WAREHOUSE = "WH-SHA"
# Plenty for every order of every item, so no order but the hot SKU's waits for stock.
COMMON_SKU = "PERF-COMMON"
COMMON_UNITS = 10_000_000
SPREAD_UNITS = 1_000
CUSTOMERS = 200
# The carrier stand-in books parcels to this postal code but moves them only when told to:
# their orders stay open, parked in PACKED.
HOLD_POSTAL_CODE = "11111"


def hot_sku(repeat: int) -> str:
    return f"PERF-HOT-{repeat}"


def spread_sku(repeat: int, i: int) -> str:
    return f"PERF-SPREAD-{repeat}-{i:05d}"


def prepare_catalog(database_url: str, repeats: int, hot_orders: int, hot_units: int) -> None:
    """The run's SKUs and stock, before any service starts: one common SKU, and per repeat a
    hot SKU with exactly `hot_units` and `hot_orders` SKUs with plenty each."""
    stock: list[tuple[str, int]] = [(COMMON_SKU, COMMON_UNITS)]
    for r in range(repeats):
        stock.append((hot_sku(r), hot_units))
        stock += [(spread_sku(r, i), SPREAD_UNITS) for i in range(hot_orders)]
    with psycopg.connect(libpq_url(database_url)) as conn, conn.cursor() as cur:
        # Safety stock 0: no low-stock alert work while the hot SKU runs dry.
        cur.executemany(
            "insert into products (sku, name, variant, category, unit_price, currency, active,"
            " safety_stock) values (%s, %s, 'perf', 'tea', 10.00, 'USD', true, 0)",
            [(sku, f"Benchmark item {sku}") for sku, _ in stock],
        )
        cur.executemany(
            "insert into stock (sku, warehouse_id, on_hand, reserved) values (%s, %s, %s, 0)",
            [(sku, WAREHOUSE, units) for sku, units in stock],
        )


def order_body(i: int, sku: str = COMMON_SKU, postal_code: str = "200001") -> dict[str, Any]:
    """A card order of one unit, shipped from the warehouse that holds the run's stock."""
    n = i % CUSTOMERS
    return {
        "customer": {
            "id": f"C-PERF-{n:03d}",
            "name": f"Perf Customer {n}",
            "email": f"perf{n}@example.com",
        },
        "channel": "web",
        "lines": [{"sku": sku, "quantity": 1}],
        "ship_to": {
            "name": f"Perf Customer {n}",
            "line1": f"{i} Bench Road",
            "city": "Shanghai",
            "postal_code": postal_code,
            "country": "CN",
        },
        "delivery": "standard",
        "payment": {"method": "card", "token": "tok_ok"},
    }


@dataclass
class Placed:
    """One POST /orders: when it was sent (monotonic), how long it took, what came back."""

    index: int
    sent_at: float
    seconds: float
    status: int
    order_id: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 201 and bool(self.order_id)


async def place(http: httpx.AsyncClient, index: int, body: dict[str, Any], key: str) -> Placed:
    """Post one order once; a failure is recorded, not retried, so it shows in the results."""
    sent = time.monotonic()
    try:
        r = await http.post("/orders", json=body, headers={"Idempotency-Key": key})
    except httpx.HTTPError as exc:
        return Placed(index, sent, time.monotonic() - sent, 0, error=f"{type(exc).__name__}")
    took = time.monotonic() - sent
    if r.status_code != 201:
        return Placed(index, sent, took, r.status_code, error=r.text[:200])
    return Placed(index, sent, took, r.status_code, order_id=str(r.json()["order_id"]))


async def place_all(
    http: httpx.AsyncClient,
    bodies: Sequence[dict[str, Any]],
    concurrency: int,
    key_prefix: str,
    on_placed: Callable[[Placed], None] | None = None,
) -> list[Placed]:
    """Post every body, at most `concurrency` at a time, as fast as the API answers."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int, body: dict[str, Any]) -> Placed:
        async with gate:
            placed = await place(http, i, body, f"{key_prefix}-{i}")
        if on_placed is not None:
            on_placed(placed)
        return placed

    return list(await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies))))


async def call_all(
    http: httpx.AsyncClient, calls: Sequence[tuple[str, str, dict[str, Any]]], concurrency: int
) -> int:
    """Run (method, path, body) calls, `concurrency` at a time; how many answered 2xx."""
    gate = asyncio.Semaphore(concurrency)

    async def one(method: str, path: str, body: dict[str, Any]) -> bool:
        async with gate:
            try:
                return (await http.request(method, path, json=body)).is_success
            except httpx.HTTPError:
                return False

    return sum(await asyncio.gather(*(one(*c) for c in calls)))


def failures(placed: Sequence[Placed]) -> str:
    """The first few refusals, for the run's notes."""
    bad = [p for p in placed if not p.ok]
    if not bad:
        return ""
    shown = "; ".join(f"#{p.index}: {p.status} {p.error[:80]}" for p in bad[:3])
    return f"{len(bad)} order(s) not accepted ({shown})"


@dataclass
class Wave:
    """Orders fired together and when each reached the status the run waited for."""

    placed: list[Placed]
    arrivals: Arrivals
    began: float

    @property
    def ids(self) -> list[str]:
        return [p.order_id for p in self.placed if p.ok]

    @property
    def arrived(self) -> int:
        return len(self.arrivals.at)

    @property
    def seconds(self) -> float:
        """From the first POST to the last order arriving."""
        return max(self.arrivals.at.values()) - self.began if self.arrivals.at else float("nan")

    def latencies(self) -> list[float]:
        """Per order, seconds from its POST being sent to its arrival."""
        return [
            self.arrivals.at[p.order_id] - p.sent_at
            for p in self.placed
            if p.order_id in self.arrivals.at
        ]

    def post_seconds(self) -> list[float]:
        return [p.seconds for p in self.placed if p.ok]

    def stragglers(self) -> str:
        """Where the orders that did not arrive are, for the run's notes."""
        missing = self.arrivals.missing(self.ids)
        if not missing:
            return failures(self.placed)
        where: dict[str, int] = {}
        for oid in missing:
            s = self.arrivals.status.get(oid, "not in the read model")
            where[s] = where.get(s, 0) + 1
        text = ", ".join(f"{s} {n}" for s, n in sorted(where.items()))
        return "; ".join(
            filter(None, [f"{len(missing)} did not arrive ({text})", failures(self.placed)])
        )


async def place_and_watch(
    http: httpx.AsyncClient,
    read_model: ReadModel,
    bodies: Sequence[dict[str, Any]],
    concurrency: int,
    key_prefix: str,
    wanted: Collection[str],
    within: float,
) -> Wave:
    """Fire the orders and watch each one from the moment it is accepted."""
    feed = Feed()

    def accepted(p: Placed) -> None:
        if p.ok:
            feed.ids.append(p.order_id)

    watch = asyncio.create_task(read_model.wait(feed, wanted, within))
    began = time.monotonic()
    try:
        placed = await place_all(http, bodies, concurrency, key_prefix, accepted)
    finally:
        feed.closed = True
    return Wave(placed, await watch, began)
