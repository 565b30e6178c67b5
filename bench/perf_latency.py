"""Item 2: API latency under a steady load of new orders.

Each tick (`rate` a second) sends, without waiting for earlier answers (so a slow answer
cannot hide the ones queued behind it), evenly spread over the tick: one POST /orders, one GET
of a running order, one GET of a completed one and one PATCH (a contact change) of a running
order. Running orders are parked at the carrier (PACKED) and cancelled afterwards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx

from bench.perf_config import PerfConfig
from bench.perf_orders import HOLD_POSTAL_CODE, call_all, order_body, place, place_and_watch
from bench.perf_stack import PerfStack
from bench.perf_stats import NAN, Outcome, latency_metrics
from bench.perf_table import Table, Target, number
from bench.perf_watch import Feed, ReadModel

# Milliseconds (p99) the issue sets for each call.
TARGETS_MS = {"post": 50.0, "get_running": 20.0, "get_completed": 20.0, "patch": 100.0}
CALLS = {
    "post": "POST /orders",
    "get_running": "GET /orders/{id} (running)",
    "get_completed": "GET /orders/{id} (completed)",
    "patch": "PATCH /orders/{id} (contact)",
}


@dataclass
class Samples:
    seconds: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in CALLS})
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CALLS, 0))
    placed: list[str] = field(default_factory=list)


async def run_latency(stack: PerfStack, cfg: PerfConfig, rm: ReadModel, repeat: int) -> Outcome:
    out = Outcome()
    pool = cfg.latency_pool
    async with stack.api(max(cfg.concurrency, int(cfg.latency_rate * 8))) as http:
        running = await place_and_watch(
            http,
            rm,
            [order_body(i, postal_code=HOLD_POSTAL_CODE) for i in range(pool)],
            cfg.concurrency,
            f"lat-run-{repeat}",
            {"PACKED"},
            cfg.timeout_seconds,
        )
        done = await place_and_watch(
            http,
            rm,
            [order_body(i) for i in range(pool)],
            cfg.concurrency,
            f"lat-done-{repeat}",
            {"COMPLETED"},
            cfg.timeout_seconds,
        )
        parked, completed = list(running.arrivals.at), list(done.arrivals.at)
        if not parked or not completed:
            out.note("no running or no completed order to read: " + running.stragglers())
            return out
        samples = await _window(http, cfg, repeat, parked, completed)
        # The window's orders finish before the next item starts, so they do not load it.
        settled = await rm.wait(Feed.of(samples.placed), {"COMPLETED"}, cfg.timeout_seconds)
        cancelled = await call_all(
            http, [("POST", f"/orders/{oid}/cancel", {"reason": "benchmark"}) for oid in parked], 16
        )
    m = out.metrics
    for kind, secs in samples.seconds.items():
        m.update(latency_metrics(kind, secs))
        m[f"{kind}_errors"] = float(samples.errors[kind])
        if samples.errors[kind]:
            out.note(f"{CALLS[kind]}: {samples.errors[kind]} call(s) failed")
    m["window_orders"] = float(len(samples.placed))
    m["window_completed"] = float(len(settled.at))
    if cancelled < len(parked):
        out.note(f"{len(parked) - cancelled} parked order(s) could not be cancelled")
    return out


async def _window(
    http: httpx.AsyncClient, cfg: PerfConfig, repeat: int, parked: list[str], completed: list[str]
) -> Samples:
    samples = Samples()
    ticks = int(cfg.latency_seconds * cfg.latency_rate)
    tasks: list[asyncio.Task[None]] = []

    async def timed(kind: str, method: str, path: str, body: dict[str, Any] | None) -> None:
        t0 = time.monotonic()
        try:
            r = await http.request(method, path, json=body)
        except httpx.HTTPError:
            samples.errors[kind] += 1
            return
        if r.is_success:
            samples.seconds[kind].append(time.monotonic() - t0)
        else:
            samples.errors[kind] += 1

    async def post(i: int) -> None:
        p = await place(http, i, order_body(10_000 + i), f"lat-win-{repeat}-{i}")
        if p.ok:
            samples.seconds["post"].append(p.seconds)
            samples.placed.append(p.order_id)
        else:
            samples.errors["post"] += 1

    began = time.monotonic()
    period = 1 / cfg.latency_rate
    for i in range(ticks):
        run_id, done_id = parked[i % len(parked)], completed[i % len(completed)]
        patch = {"contact": {"email": f"perf-edit-{i}@example.com"}}
        calls: list[Callable[[], Coroutine[Any, Any, None]]] = [
            partial(post, i),
            partial(timed, "get_running", "GET", f"/orders/{run_id}", None),
            partial(timed, "get_completed", "GET", f"/orders/{done_id}", None),
            partial(timed, "patch", "PATCH", f"/orders/{run_id}", patch),
        ]
        # Spread over the tick, as steady traffic arrives: four calls sent in the same instant
        # would each wait for the others' turn on the API's one event loop.
        for j, call in enumerate(calls):
            at = began + (i + j / len(calls)) * period
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            tasks.append(asyncio.create_task(call()))
    await asyncio.gather(*tasks)
    return samples


def tables(m: dict[str, float], cfg: PerfConfig) -> list[Table]:
    rows = [
        [
            label,
            number(m.get(f"{kind}_count", float("nan")), 0),
            number(m.get(f"{kind}_errors", float("nan")), 0),
            number(m.get(f"{kind}_p50", float("nan")), 1),
            number(m.get(f"{kind}_p95", float("nan")), 1),
            number(m.get(f"{kind}_p99", float("nan")), 1),
            number(m.get(f"{kind}_max", float("nan")), 1),
            f"≤ {TARGETS_MS[kind]:g}",
        ]
        for kind, label in CALLS.items()
    ]
    return [
        Table(
            f"2. API latency at {cfg.latency_rate:g} orders/s for {cfg.latency_seconds:g} s "
            "(each call at that rate, open loop), ms",
            ["call", "n", "errors", "p50", "p95", "p99", "max", "p99 target"],
            rows,
            note=f"  orders placed in the window: {number(m.get('window_orders', NAN), 0)},"
            f" completed afterwards: {number(m.get('window_completed', NAN), 0)}",
        )
    ]


def targets(m: dict[str, float]) -> list[Target]:
    return [
        Target(f"p99 {CALLS[k]}", m.get(f"{k}_p99", float("nan")), bound, "ms")
        for k, bound in TARGETS_MS.items()
    ]
