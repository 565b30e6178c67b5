"""Crashes and outages while orders run (§10): the chaos run of `bench/chaos.py`, small.

It starts a stack of its own, each piece an OS process (not the shared in-process fixtures),
and meets it with one fault of each kind that crashes something mid-step: a worker SIGKILL,
PostgreSQL and the Temporal server SIGKILLed and started again on their data, the worker
killed during a gateway outage, Temporal killed while the worker is down, the API killed with
edits in flight; and a short payment and carrier outage.
"""

from __future__ import annotations

from bench.chaos import format_report, run_chaos
from bench.chaos_config import ChaosConfig
from bench.chaos_faults import (
    API_KILL_WITH_EDITS,
    POSTGRES_KILL,
    TEMPORAL_KILL,
    TEMPORAL_KILL_WORKER_DOWN,
    WORKER_KILL_IN_OUTAGE,
)

SMALL = ChaosConfig(
    orders=36,
    seed=5,
    rate=2.0,
    worker_kills=1,
    # The API's SIGKILL and Temporal's restart are covered by the faults that overlap.
    api_restarts=0,
    temporal_restarts=0,
    postgres_kills=1,
    temporal_kills=1,
    worker_kills_in_outage=1,
    temporal_kills_worker_down=1,
    api_kills_with_edits=1,
    worker_down_seconds=1.5,
    api_down_seconds=0.5,
    temporal_down_seconds=2.0,
    postgres_down_seconds=2.0,
    payment_outage_seconds=4.0,
    carrier_outage_seconds=4.0,
    edits_in_flight=2,
    edit_wait_seconds=6.0,
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
    kinds = {f.kind for f in report.faults}
    assert len(report.faults) == 8, table
    assert {
        POSTGRES_KILL,
        TEMPORAL_KILL,
        WORKER_KILL_IN_OUTAGE,
        TEMPORAL_KILL_WORKER_DOWN,
        API_KILL_WITH_EDITS,
    } <= kinds, table
    # A fault that did not happen as planned (no edit in flight, a workflow lost) is an error.
    assert not [f for f in report.faults if f.error], table
    assert not [i.name for i in report.invariants if not i.held], table
