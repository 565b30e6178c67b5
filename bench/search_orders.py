"""Search latency on a large read model: `python -m bench.search_orders [--orders 1000000]`.

Starts its own embedded PostgreSQL (or uses ORDERFLOW_DATABASE_URL), migrates it, fills the
read model with synthetic orders (one customer per ten orders, 2,000 SKUs, two lines an order;
kept between runs), then times the API's search query (`models.orders_repo.search_orders`) by
customer, by SKU and by part of a customer name, first page of 50, and prints p50 / p99 with
the plans PostgreSQL chose.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import orders_repo
from orderflow.db import make_engine, make_sessions
from orderflow.embedded import start_postgres
from orderflow.migrate import upgrade

SKUS = 2000
CUSTOMERS_PER_ORDER = 0.1  # one customer per ten orders

FILL = """
insert into orders (order_id, customer_id, customer_name, customer_email, customer_phone,
                    channel, channel_order_id, status, total, currency, view, last_seq,
                    created_at, updated_at)
select 'SO-B-' || lpad(g::text, 9, '0'),
       'C-B-' || (g % cast(:customers as int)),
       'Customer ' || (g % cast(:customers as int)),
       'c' || (g % cast(:customers as int)) || '@bench.example',
       '+1 555 ' || lpad((g % cast(:customers as int))::text, 7, '0'),
       (array['web','mobile','marketplace','phone'])[1 + g % 4],
       '',
       (array['COMPLETED','COMPLETED','COMPLETED','SHIPPED','CANCELLED','CONFIRMED'])[1 + g % 6],
       (g % 500) + 9.99, 'USD',
       jsonb_build_object('lines', jsonb_build_array(
           jsonb_build_object('sku', 'SKU-B-' || (g % cast(:skus as int))),
           jsonb_build_object('sku', 'SKU-B-' || ((g * 7) % cast(:skus as int))))),
       1,
       timestamptz '2025-01-01' + (g || ' minutes')::interval,
       timestamptz '2025-01-01' + (g || ' minutes')::interval
from generate_series(cast(:first as int), cast(:last as int)) g
"""
FILL_LINES = """
insert into order_lines (order_id, sku, quantity, created_at)
select 'SO-B-' || lpad(g::text, 9, '0'), s.sku, 1,
       timestamptz '2025-01-01' + (g || ' minutes')::interval
from generate_series(cast(:first as int), cast(:last as int)) g,
     lateral (select distinct unnest(array['SKU-B-' || (g % cast(:skus as int)),
                                           'SKU-B-' || ((g * 7) % cast(:skus as int))]) as sku) s
"""


async def fill(sessions: async_sessionmaker[AsyncSession], n: int) -> None:
    async with sessions.begin() as s:
        have = await s.scalar(text("select count(*) from orders where order_id like 'SO-B-%'"))
    if have >= n:
        return
    customers = max(1, int(n * CUSTOMERS_PER_ORDER))
    step = 100_000
    for first in range(have + 1, n + 1, step):
        last = min(n, first + step - 1)
        params = {"first": first, "last": last, "customers": customers, "skus": SKUS}
        async with sessions.begin() as s:
            await s.execute(text(FILL), params)
            await s.execute(text(FILL_LINES), params)
        print(f"  filled {last:,} orders", flush=True)


async def timed(session: AsyncSession, f: orders_repo.OrderFilter) -> float:
    t0 = time.perf_counter()
    await orders_repo.search_orders(session, f, 50)
    return (time.perf_counter() - t0) * 1000


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


async def main(n: int, runs: int) -> None:
    url = os.environ.get("ORDERFLOW_DATABASE_URL") or start_postgres(
        Path(tempfile.gettempdir()) / "orderflow-bench", database="orderflow_bench"
    )
    upgrade(url)
    engine = make_engine(url)
    sessions = make_sessions(engine)
    t0 = time.perf_counter()
    await fill(sessions, n)
    # As autovacuum would in time: index-only scans need the visibility map of a settled table.
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("vacuum analyze orders"))
        await conn.execute(text("vacuum analyze order_lines"))
        await conn.execute(text("vacuum analyze order_customer_names"))
    print(f"read model ready with {n:,} orders in {time.perf_counter() - t0:.0f} s")
    customers = max(1, int(n * CUSTOMERS_PER_ORDER))
    rnd = random.Random(7)
    cases = {
        "by customer": lambda: orders_repo.OrderFilter(
            customer_id=f"C-B-{rnd.randrange(customers)}"
        ),
        "by SKU": lambda: orders_repo.OrderFilter(sku=f"SKU-B-{rnd.randrange(SKUS)}"),
        "by customer name (partial)": lambda: orders_repo.OrderFilter(
            customer_name=f"Customer {rnd.randrange(customers)}"
        ),
    }
    print(f"\n{'query':30} {'p50 ms':>8} {'p99 ms':>8}  (first page of 50, {runs} runs)")
    async with sessions() as session:
        for name, make in cases.items():
            for _ in range(20):  # warm the cache
                await timed(session, make())
            times = [await timed(session, make()) for _ in range(runs)]
            print(f"{name:30} {pct(times, 50):8.2f} {pct(times, 99):8.2f}")
        for name, query in (
            (
                "by customer",
                "select * from orders where customer_id = 'C-B-42' "
                "order by created_at desc, order_id desc limit 51",
            ),
            (
                "by SKU",
                "select o.* from orders o join order_lines l on l.order_id = o.order_id "
                "and l.sku = 'SKU-B-42' order by l.created_at desc, l.order_id desc limit 51",
            ),
        ):
            plan = await session.execute(text("explain analyze " + query))
            print(f"\nplan {name}:")
            for (line,) in plan:
                print("  " + line)
    await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(main(args.orders, args.runs))
