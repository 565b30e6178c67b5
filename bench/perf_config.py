"""What a performance run measures, how big, and the stack's settings for it."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from pathlib import Path

# In the order they run: the stack-wide measures first, the search (which fills the read
# model with a million synthetic orders) last.
ITEMS = ("lifecycle", "latency", "hot-sku", "open-orders", "search", "profile")


@dataclass
class PerfConfig:
    """Every knob of `python -m bench.perf`; the defaults are the full run."""

    only: tuple[str, ...] = ITEMS
    orders: int = 1000
    # Requests in flight at once from this client when orders are fired "all at once".
    concurrency: int = 64
    repeat: int = 1
    # Worker processes on the order task queue (one Python process uses about one core).
    workers: int = 1
    # Orders run to completion before anything is measured: the worker's first workflows pay
    # for imports and caches that no later order does.
    warmup: int = 10
    latency_rate: float = 10.0
    latency_seconds: float = 60.0
    # Orders kept running (parked at the carrier) and completed, for the GET and PATCH calls.
    latency_pool: int = 20
    hot_orders: int = 1000
    hot_units: int = 100
    open_orders: int = 10_000
    search_orders: int = 1_000_000
    search_runs: int = 500
    # py-spy's samples per second.
    profile_rate: int = 100
    # Longest wait for orders to reach a status before the run reports what did not.
    timeout_seconds: float = 1800.0
    out: Path | None = None
    json_path: Path | None = None
    # Timers of the stack: as short as the order path allows, so an order's time is work.
    timers: dict[str, str] = field(
        default_factory=lambda: {
            "carrier_step_seconds": "0",
            "after_sales_window_seconds": "0",
            "warehouse_release_seconds": "0",
            "review_escalate_seconds": "1",
            "review_timeout_seconds": "2",
            "merge_window_seconds": "0",
        }
    )

    def wants(self, item: str) -> bool:
        # The profile is taken during the lifecycle run, so it brings that run along.
        if item == "lifecycle" and "profile" in self.only:
            return True
        return item in self.only

    def stack_settings(self) -> dict[str, str]:
        """`ORDERFLOW_*` settings of every process (without the prefix)."""
        return {
            **self.timers,
            # Orders that wait for stock or money must still be waiting when the run counts
            # them; nothing here pays later or restocks.
            "payment_timeout_seconds": "86400",
            "backorder_timeout_seconds": "86400",
            "backorder_recheck_seconds": "86400",
            # Many orders of few customers within the hour: no risk review, no SLA alerts.
            "review_amount_over": "1000000",
            "review_new_customer_amount_over": "1000000",
            "review_orders_per_hour": "1000000",
            "sla_seconds": "{}",
        }

    def describe(self) -> dict[str, object]:
        """The run's settings as recorded in its header and JSON."""
        d = asdict(self)
        d["only"] = list(self.only)
        d["out"] = str(self.out) if self.out else None
        d["json_path"] = str(self.json_path) if self.json_path else None
        d["stack_settings"] = self.stack_settings()
        del d["timers"]
        return d

    def header(self) -> str:
        s = self.stack_settings()
        timers = ", ".join(f"{k}={v}" for k, v in sorted(s.items()))
        return "\n".join(
            [
                f"bench.perf: {', '.join(self.only)}; repeat {self.repeat} (medians); "
                f"{self.warmup} warm-up orders",
                f"  orders {self.orders}, concurrency {self.concurrency}, "
                f"{self.workers} worker process(es); latency "
                f"{self.latency_rate:g}/s for {self.latency_seconds:g} s (pool "
                f"{self.latency_pool}); hot SKU {self.hot_orders} orders on "
                f"{self.hot_units} units; open orders {self.open_orders}; search "
                f"{self.search_orders} orders x {self.search_runs} queries",
                f"  stack settings: {timers}",
            ]
        )


def _items(text: str) -> tuple[str, ...]:
    names = tuple(n.strip().replace("_", "-") for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in ITEMS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown item(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(ITEMS)}"
        )
    return tuple(n for n in ITEMS if n in names)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def _timers(text: str) -> dict[str, str]:
    """`name=value,…` of stack timers to override."""
    out = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"{pair!r} is not name=value")
        out[name.strip()] = value.strip()
    return out


def parse_args(argv: list[str] | None = None) -> PerfConfig:
    """The run's settings from the command line."""
    d = PerfConfig()
    p = argparse.ArgumentParser(
        prog="python -m bench.perf",
        description="Throughput, latency, contention, memory and search of one stack.",
    )
    p.add_argument("--only", type=_items, default=d.only, help=f"comma list of {','.join(ITEMS)}")
    p.add_argument("--orders", type=_positive, default=d.orders, help="lifecycle orders")
    p.add_argument("--concurrency", type=_positive, default=d.concurrency)
    p.add_argument("--repeat", type=_positive, default=d.repeat, help="report medians of R runs")
    p.add_argument("--workers", type=_positive, default=d.workers, help="worker processes")
    p.add_argument("--warmup", type=int, default=d.warmup, help="unmeasured orders first")
    p.add_argument("--latency-rate", type=float, default=d.latency_rate, metavar="PER_S")
    p.add_argument("--latency-seconds", type=float, default=d.latency_seconds, metavar="S")
    p.add_argument("--latency-pool", type=_positive, default=d.latency_pool)
    p.add_argument("--hot-orders", type=_positive, default=d.hot_orders)
    p.add_argument("--hot-units", type=_positive, default=d.hot_units)
    p.add_argument("--open-orders", type=_positive, default=d.open_orders)
    p.add_argument("--search-orders", type=_positive, default=d.search_orders)
    p.add_argument("--search-runs", type=_positive, default=d.search_runs)
    p.add_argument("--profile-rate", type=_positive, default=d.profile_rate, metavar="HZ")
    p.add_argument("--timeout", type=float, default=d.timeout_seconds, metavar="S")
    p.add_argument("--timers", type=_timers, default={}, help="stack timers, name=value,…")
    p.add_argument("--out", type=Path, help="results directory (default: bench/results/<time>)")
    p.add_argument("--json", type=Path, help="also write the results to this file")
    a = p.parse_args(argv)
    if a.hot_units > a.hot_orders:
        p.error("--hot-units must not exceed --hot-orders: the SKU would never run short")
    cfg = PerfConfig(
        only=a.only,
        orders=a.orders,
        concurrency=a.concurrency,
        repeat=a.repeat,
        workers=a.workers,
        warmup=max(0, a.warmup),
        latency_rate=a.latency_rate,
        latency_seconds=a.latency_seconds,
        latency_pool=a.latency_pool,
        hot_orders=a.hot_orders,
        hot_units=a.hot_units,
        open_orders=a.open_orders,
        search_orders=a.search_orders,
        search_runs=a.search_runs,
        profile_rate=a.profile_rate,
        timeout_seconds=a.timeout,
        out=a.out,
        json_path=a.json,
    )
    cfg.timers.update(a.timers)
    return cfg
