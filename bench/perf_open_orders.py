"""Item 4: many orders open at once, waiting on the carrier; the worker's memory while they
wait, then how long they take to finish once the carrier moves every parcel.

The carrier stand-in's step (seconds between two tracking events) is set far out before the
orders are placed, so each parcel stays booked and its order waits in PACKED; setting it
back to 0 releases every parcel at once.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bench.perf_config import PerfConfig
from bench.perf_orders import order_body, place_and_watch
from bench.perf_profile import tree_rss_bytes
from bench.perf_stack import PerfStack
from bench.perf_stats import Outcome, rate
from bench.perf_table import Table, Target, number
from bench.perf_watch import Feed, ReadModel

MIB = 1024 * 1024
RSS_TARGET_MIB = 1024.0
HOLD_STEP_SECONDS = 10 * 365 * 24 * 3600.0


@dataclass
class RssWatch:
    """The worker's resident memory (with its children), sampled twice a second."""

    pid: int
    peak: int = 0
    last: int = 0

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(0.5)

    def sample(self) -> int:
        self.last = tree_rss_bytes(self.pid)
        self.peak = max(self.peak, self.last)
        return self.last


async def run_open_orders(stack: PerfStack, cfg: PerfConfig, rm: ReadModel, repeat: int) -> Outcome:
    out = Outcome()
    m = out.metrics
    rss = RssWatch(stack.pid("worker"))
    m["rss_before_mib"] = rss.sample() / MIB
    sampler = asyncio.create_task(rss.run())
    try:
        waiting, released = await _park(stack, cfg, rm, repeat, rss, out)
        finished = await rm.wait(Feed.of(waiting), {"COMPLETED"}, cfg.timeout_seconds)
    finally:
        sampler.cancel()
    release_seconds = max(finished.at.values()) - released if finished.at else float("nan")
    m["orders"] = float(cfg.open_orders)
    m["parked"] = float(len(waiting))
    m["rss_peak_mib"] = max(rss.peak, rss.sample()) / MIB
    m["rss_after_mib"] = rss.last / MIB
    m["completed"] = float(len(finished.at))
    m["release_seconds"] = release_seconds
    m["release_per_s"] = rate(len(finished.at), release_seconds)
    missing = len(waiting) - len(finished.at)
    if missing:
        out.note(f"{missing} released order(s) did not complete: {finished.counts()}")
    return out


async def _park(
    stack: PerfStack, cfg: PerfConfig, rm: ReadModel, repeat: int, rss: RssWatch, out: Outcome
) -> tuple[list[str], float]:
    """Place the orders with the carrier holding every parcel; the orders that parked, and
    when the carrier was told to move again."""
    m = out.metrics
    await stack.carrier_step(HOLD_STEP_SECONDS)
    try:
        async with stack.api(cfg.concurrency) as http:
            parked = await place_and_watch(
                http,
                rm,
                [order_body(i) for i in range(cfg.open_orders)],
                cfg.concurrency,
                f"open-{repeat}",
                {"PACKED"},
                cfg.timeout_seconds,
            )
        out.note(parked.stragglers())
        m["parked_seconds"] = parked.seconds
        # A moment of quiet with every order open, so the reading is of waiting orders.
        await asyncio.sleep(2)
        m["rss_parked_mib"] = rss.sample() / MIB
        m["rss_peak_parked_mib"] = rss.peak / MIB
    finally:
        await stack.carrier_step(float(cfg.timers["carrier_step_seconds"]))
    return list(parked.arrivals.at), time.monotonic()


def tables(m: dict[str, float]) -> list[Table]:
    def mib(k: str) -> str:
        return number(m.get(k, float("nan")), 0, "MiB")

    nan = float("nan")
    rows = [
        [
            "orders open at once (PACKED, parcel held)",
            f"{number(m.get('parked', nan), 0)} / {number(m.get('orders', nan), 0)}",
        ],
        ["time to place them and see all parked", number(m.get("parked_seconds", nan), 1, "s")],
        ["worker RSS before", mib("rss_before_mib")],
        ["worker RSS with all open", mib("rss_parked_mib")],
        ["worker RSS peak (placing + release)", mib("rss_peak_mib")],
        ["worker RSS after all finished", mib("rss_after_mib")],
        ["completed after release", number(m.get("completed", nan), 0)],
        ["release → last COMPLETED", number(m.get("release_seconds", nan), 1, "s")],
        ["completions per s after release", number(m.get("release_per_s", nan), 1)],
    ]
    return [Table("4. Open orders waiting on delivery", ["measure", "value"], rows)]


def targets(m: dict[str, float]) -> list[Target]:
    return [
        Target(
            "worker RSS peak, open orders",
            m.get("rss_peak_mib", float("nan")),
            RSS_TARGET_MIB,
            "MiB",
            digits=0,
        )
    ]
