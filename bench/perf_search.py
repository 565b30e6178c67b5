"""Item 5: search latency on a large read model, with bench.search_orders' data and query.

The synthetic orders go into the stack's own read model (beside the run's real orders, under
their own customers and SKUs), so no second PostgreSQL runs beside the stack.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from sqlalchemy import text

from bench import search_orders
from bench.perf_config import PerfConfig
from bench.perf_stack import PerfStack
from bench.perf_stats import Outcome, latency_metrics
from bench.perf_table import Table, Target, number
from models import orders_repo
from orderflow.db import make_engine, make_sessions

CASES = {"customer": "by customer", "sku": "by SKU", "name": "by customer name (partial)"}
WARMUP = 20
P99_MS = 20.0


def _cases(orders: int, rnd: random.Random) -> dict[str, Callable[[], orders_repo.OrderFilter]]:
    customers = max(1, int(orders * search_orders.CUSTOMERS_PER_ORDER))
    return {
        "customer": lambda: orders_repo.OrderFilter(customer_id=f"C-B-{rnd.randrange(customers)}"),
        "sku": lambda: orders_repo.OrderFilter(sku=f"SKU-B-{rnd.randrange(search_orders.SKUS)}"),
        "name": lambda: orders_repo.OrderFilter(
            customer_name=f"Customer {rnd.randrange(customers)}"
        ),
    }


async def run_search(stack: PerfStack, cfg: PerfConfig) -> Outcome:
    out = Outcome()
    engine = make_engine(stack.database_url, pool_size=2)
    try:
        sessions = make_sessions(engine)
        t0 = time.monotonic()
        await search_orders.fill(sessions, cfg.search_orders)
        # As autovacuum would in time: index-only scans need the visibility map of a settled
        # table, as bench.search_orders does.
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("vacuum analyze orders"))
            await conn.execute(text("vacuum analyze order_lines"))
            await conn.execute(text("vacuum analyze order_customer_names"))
        out.metrics["fill_seconds"] = time.monotonic() - t0
        rnd = random.Random(7)
        async with sessions() as session:
            for key, make in _cases(cfg.search_orders, rnd).items():
                for _ in range(WARMUP):
                    await search_orders.timed(session, make())
                # timed() answers in milliseconds.
                times = [
                    await search_orders.timed(session, make()) / 1000
                    for _ in range(cfg.search_runs)
                ]
                out.metrics.update(latency_metrics(key, times))
    finally:
        await engine.dispose()
    out.metrics["orders"] = float(cfg.search_orders)
    return out


def tables(m: dict[str, float]) -> list[Table]:
    rows = [
        [
            label,
            number(m.get(f"{k}_count", float("nan")), 0),
            number(m.get(f"{k}_p50", float("nan")), 2),
            number(m.get(f"{k}_p99", float("nan")), 2),
        ]
        for k, label in CASES.items()
    ]
    return [
        Table(
            f"5. Search on {number(m.get('orders', float('nan')), 0)} synthetic orders "
            "(first page of 50), ms",
            ["query", "runs", "p50", "p99"],
            rows,
            note=f"  read model filled in {number(m.get('fill_seconds', float('nan')), 0, 's')}",
        )
    ]


def targets(m: dict[str, float]) -> list[Target]:
    return [
        Target(f"search p99 {label}", m.get(f"{k}_p99", float("nan")), P99_MS, "ms", "le", 2)
        for k, label in CASES.items()
    ]
