"""Crashes and outages while orders run (§10): the chaos run of `bench/chaos.py`, small.

It starts a stack of its own, each piece an OS process (not the shared in-process fixtures):
one worker SIGKILL, one API crash, one Temporal restart, a short payment and carrier outage.
"""

from __future__ import annotations

from bench.chaos import format_report, run_chaos
from bench.chaos_config import ChaosConfig

SMALL = ChaosConfig(
    orders=36,
    # This seed kills the worker early and crashes the API while orders are being placed.
    seed=5,
    rate=2.0,
    worker_kills=1,
    api_restarts=1,
    temporal_restarts=1,
    worker_down_seconds=1.5,
    api_down_seconds=0.5,
    temporal_down_seconds=2.0,
    payment_outage_seconds=4.0,
    carrier_outage_seconds=4.0,
    fault_tail_seconds=12.0,
    carrier_step_seconds=0.5,
    after_sales_seconds=1.0,
    warehouse_release_seconds=3.0,
    new_payment_method_seconds=20.0,
    settle_seconds=120.0,
    step_seconds=90.0,
)


async def test_orders_survive_crashes_and_outages() -> None:
    report = await run_chaos(SMALL, say=print)
    table = format_report(report)
    print(table)
    assert report.accepted == SMALL.orders, table
    assert len(report.faults) == 5, table
    assert not [f for f in report.faults if f.error], table
    assert report.ok, table
