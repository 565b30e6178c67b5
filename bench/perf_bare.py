"""The yardstick: a bare Temporal workflow with six no-op activities and one signal.

`python -m bench.perf_bare --address HOST:PORT --task-queue Q` runs its worker as a process of
its own (as the order worker is), printing "ready" once it polls; `run_bare` starts N of them
on that server, signals each, and waits for every result.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

ACTIVITIES = 6
TASK_QUEUE = "perf-bare"
READY = "ready"
# What a workflow returns when every activity ran once, in order.
EXPECTED = sum(1 + step for step in range(ACTIVITIES))


@activity.defn(name="perf_noop")
async def noop(step: int) -> int:
    return step


@workflow.defn(name="PerfBare")
class BareWorkflow:
    """Three activities, the signal, three more: the shape of an order without its work."""

    def __init__(self) -> None:
        self._signalled = False

    @workflow.signal
    def go(self) -> None:
        self._signalled = True

    @workflow.run
    async def run(self) -> int:
        done = 0
        for step in range(ACTIVITIES):
            if step == ACTIVITIES // 2:
                await workflow.wait_condition(lambda: self._signalled)
            done += 1 + await workflow.execute_activity(
                noop, step, start_to_close_timeout=timedelta(seconds=30)
            )
        return done


async def serve(address: str, task_queue: str, activities: int, cached: int) -> None:
    """Run the worker until SIGTERM or SIGINT."""
    client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[BareWorkflow],
        activities=[noop],
        # The order worker's own limits, so the comparison is of the work, not the knobs.
        max_concurrent_activities=activities,
        max_cached_workflows=cached,
    ):
        print(READY, flush=True)
        await stop.wait()


def start_worker(
    address: str, task_queue: str, activities: int, cached: int
) -> subprocess.Popen[str]:
    """The bare worker as a process of its own; returns once it polls."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.perf_bare",
            "--address",
            address,
            "--task-queue",
            task_queue,
            "--activities",
            str(activities),
            "--cached",
            str(cached),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != READY:
        stop_worker(proc)
        raise RuntimeError(f"the bare worker did not start (it said {line!r})")
    return proc


def stop_worker(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class BareResult:
    workflows: int
    completed: int
    seconds: float


async def run_bare(
    client: Client, count: int, concurrency: int, task_queue: str, prefix: str
) -> BareResult:
    """Start `count` workflows and signal each (at most `concurrency` calls at a time), then
    wait for every result; the time runs from the first start to the last result."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> bool:
        async with gate:
            handle = await client.start_workflow(
                BareWorkflow.run, id=f"{prefix}-{i}", task_queue=task_queue
            )
            await handle.signal(BareWorkflow.go)
        return await handle.result() == EXPECTED

    began = time.monotonic()
    results = await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)
    took = time.monotonic() - began
    return BareResult(count, sum(1 for r in results if r is True), took)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.perf_bare", description=__doc__)
    p.add_argument("--address", required=True)
    p.add_argument("--task-queue", default=TASK_QUEUE)
    p.add_argument("--activities", type=int, default=200)
    p.add_argument("--cached", type=int, default=10_000)
    a = p.parse_args()
    asyncio.run(serve(a.address, a.task_queue, a.activities, a.cached))


if __name__ == "__main__":
    main()
