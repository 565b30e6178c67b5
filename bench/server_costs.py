"""What each kind of command costs the Temporal server: `python -m bench.server_costs`.

Runs the bare workflow of bench.perf_bare (six no-op activities, one signal) and variants of
it on a dev server of its own, and prints each variant's rate and the server's CPU per
workflow: with extra search-attribute upserts, extra signals, or timers. An order's own
extras (bench.perf prints how many of each it asks for) are priced by these differences.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench.chaos_stack import free_port
from bench.perf_bare import noop
from bench.perf_profile import tree_cpu_seconds
from orderflow.embedded import start_temporal, stop_process, wait_for_temporal
from workflows.contract import SA_STATUS

STEPS = 6


@dataclass
class Variant:
    name: str
    # Search-attribute upserts in the last workflow task, and in each of the six before it.
    upserts_at_end: int = 0
    upserts_each_task: int = 0
    signals: int = 1
    timers: int = 0


VARIANTS = (
    Variant("bare: 6 activities, 1 signal"),
    Variant("+ 10 upserts, in one task", upserts_at_end=10),
    Variant("+ 6 upserts, one in each task", upserts_each_task=1),
    Variant("+ 3 signals", signals=4),
    Variant("+ 2 timers", timers=2),
)


@workflow.defn(name="ServerCost")
class ServerCostWorkflow:
    def __init__(self) -> None:
        self._signals = 0

    @workflow.signal
    def go(self) -> None:
        self._signals += 1

    @workflow.run
    async def run(self, v: Variant) -> None:
        for step in range(STEPS):
            if step == STEPS // 2:
                await workflow.wait_condition(lambda: self._signals >= v.signals)
            if step < v.timers:
                await workflow.sleep(0.01)
            for n in range(v.upserts_each_task):
                workflow.upsert_search_attributes([SA_STATUS.value_set(f"T{step}-{n}")])
            await workflow.execute_activity(
                noop, step, start_to_close_timeout=timedelta(seconds=30)
            )
        for n in range(v.upserts_at_end):
            workflow.upsert_search_attributes([SA_STATUS.value_set(f"S{n}")])


async def _run(client: Client, v: Variant, count: int, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            handle = await client.start_workflow(
                ServerCostWorkflow.run,
                v,
                id=f"server-cost-{uuid.uuid4().hex[:8]}-{i}",
                task_queue="server-cost",
            )
            for _ in range(v.signals):
                await handle.signal(ServerCostWorkflow.go)
            await handle.result()

    began = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(count)))
    return time.monotonic() - began


async def main(count: int, concurrency: int) -> None:
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="orderflow-server-costs-"))
    server = start_temporal(data / "temporal.db", port, free_port(), ui=False)
    try:
        address = f"127.0.0.1:{port}"
        await wait_for_temporal(address, server)
        client = await Client.connect(address)
        async with Worker(
            client,
            task_queue="server-cost",
            workflows=[ServerCostWorkflow],
            activities=[noop],
            # Only the server is measured here; the worker need not re-check determinism.
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            print(f"{'workflow':32} {'per s':>7} {'server CPU ms each':>19}")
            for v in VARIANTS:
                cpu0 = tree_cpu_seconds(server.pid)
                took = await _run(client, v, count, concurrency)
                cpu = tree_cpu_seconds(server.pid) - cpu0
                print(f"{v.name:32} {count / took:7.1f} {1000 * cpu / count:19.1f}", flush=True)
    finally:
        stop_process(server)


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m bench.server_costs", description=__doc__)
    p.add_argument("--workflows", type=int, default=400, help="of each variant")
    p.add_argument("--concurrency", type=int, default=64)
    a = p.parse_args()
    asyncio.run(main(a.workflows, a.concurrency))
