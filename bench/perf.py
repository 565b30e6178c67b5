"""Performance of one stack (§10): `python -m bench.perf [--only lifecycle,latency,…]`.

Starts a stack of its own (as bench.chaos does, without faults, with every timer as short as
the order path allows) and measures, one after the other:

1. lifecycle: orders per second from POST /orders to COMPLETED and per-order latency, then a
   bare workflow (6 no-op activities, 1 signal) on the same Temporal server, and the ratio;
2. latency: POST, GET (running, completed) and PATCH p99 at a steady rate of new orders;
3. hot-sku: orders racing for a SKU with few units (none oversold) against spread SKUs;
4. open-orders: the worker's memory with many orders waiting on the carrier, and the time
   to finish them once the carrier moves;
5. search: bench.search_orders' queries on a read model of a million orders;
6. profile: py-spy of the worker and the API during the lifecycle run; CPU per process is
   measured in every lifecycle run.

Prints a table per item and a summary against the targets; writes everything as JSON to the
results directory (`--out`, by default a new directory under bench/results/).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from bench import perf_hot_sku, perf_latency, perf_lifecycle, perf_open_orders, perf_search
from bench.perf_config import PerfConfig, parse_args
from bench.perf_orders import order_body, place_and_watch
from bench.perf_profile import cpu_table
from bench.perf_speedscope import hot_frames_table
from bench.perf_stack import PerfStack, Say
from bench.perf_stats import Outcome, median_metrics
from bench.perf_table import Table, Target, render, summary_table
from bench.perf_watch import ReadModel

RESULTS = Path(__file__).parent / "results"
CPU_GROUPS = ["temporal server", "worker", "api", "postgresql", "stand-ins", "bench client"]
Runner = Callable[[PerfStack, PerfConfig, ReadModel, int], Awaitable[Outcome]]


def _runners(out: Path) -> dict[str, Runner]:
    def lifecycle(s: PerfStack, c: PerfConfig, rm: ReadModel, r: int) -> Awaitable[Outcome]:
        # py-spy on the first run only: its samples are what is wanted, not its cost in repeats.
        profiled = out / "profile" if c.wants("profile") and r == 0 else None
        return perf_lifecycle.run_lifecycle(s, c, rm, r, profiled)

    def search(s: PerfStack, c: PerfConfig, rm: ReadModel, r: int) -> Awaitable[Outcome]:
        return perf_search.run_search(s, c)

    return {
        "lifecycle": lifecycle,
        "latency": perf_latency.run_latency,
        "hot-sku": perf_hot_sku.run_hot_sku,
        "open-orders": perf_open_orders.run_open_orders,
        "search": search,
    }


async def run(cfg: PerfConfig, out: Path, say: Say) -> dict[str, list[Outcome]]:
    """Every selected item, `repeat` times, on one stack started for the run."""
    runners = _runners(out)
    results: dict[str, list[Outcome]] = {}
    for attempt in (1, 2):
        data = Path(tempfile.mkdtemp(prefix="orderflow-perf-"))
        stack = PerfStack(cfg, data)
        began = time.monotonic()
        say(f"starting the stack in {data}")
        try:
            try:
                await stack.start()
            except (RuntimeError, TimeoutError) as exc:
                # A free port taken by another program before ours bound it: new ports, once.
                if attempt == 2:
                    raise
                say(f"the stack did not start ({exc}); once more on other ports")
                continue
            say(f"stack up in {time.monotonic() - began:.1f} s")
            async with ReadModel(stack.database_url) as rm:
                await _warm_up(stack, cfg, rm, say)
                for r in range(cfg.repeat):
                    for item, runner in runners.items():
                        if not cfg.wants(item):
                            continue
                        say(f"run {r + 1}/{cfg.repeat}: {item}")
                        t0 = time.monotonic()
                        outcome = await runner(stack, cfg, rm, r)
                        results.setdefault(item, []).append(outcome)
                        took = time.monotonic() - t0
                        say(f"run {r + 1}/{cfg.repeat}: {item} done in {took:.0f} s")
            for exit_note in stack.unplanned_exits():
                say(f"note: {exit_note}")
            return results
        finally:
            await stack.stop()
            stack.keep_logs(out / "logs")
            shutil.rmtree(data, ignore_errors=True)
    raise AssertionError("unreachable")


async def _warm_up(stack: PerfStack, cfg: PerfConfig, rm: ReadModel, say: Say) -> None:
    if not cfg.warmup:
        return
    bodies = [order_body(i) for i in range(cfg.warmup)]
    async with stack.api(cfg.concurrency) as http:
        wave = await place_and_watch(
            http, rm, bodies, cfg.concurrency, "warmup", {"COMPLETED"}, cfg.timeout_seconds
        )
    say(f"warm-up: {wave.arrived} of {cfg.warmup} orders completed in {wave.seconds:.1f} s")


def report(
    cfg: PerfConfig, out: Path, results: dict[str, list[Outcome]]
) -> tuple[str, dict[str, object]]:
    """The printed tables and the JSON document of a run."""
    medians = {item: median_metrics(o.metrics for o in runs) for item, runs in results.items()}
    notes = {item: sorted({n for o in runs for n in o.notes}) for item, runs in results.items()}
    tables: list[Table] = []
    targets: list[Target] = []
    info: list[list[str]] = []
    if "lifecycle" in medians:
        m = medians["lifecycle"]
        tables += perf_lifecycle.tables(m)
        targets += perf_lifecycle.targets(m)
        info += perf_lifecycle.informative(m)
    if "latency" in medians:
        tables += perf_latency.tables(medians["latency"], cfg)
        targets += perf_latency.targets(medians["latency"])
    if "hot-sku" in medians:
        tables += perf_hot_sku.tables(medians["hot-sku"])
        targets += perf_hot_sku.targets(medians["hot-sku"])
    if "open-orders" in medians:
        tables += perf_open_orders.tables(medians["open-orders"])
        targets += perf_open_orders.targets(medians["open-orders"])
    if "search" in medians:
        tables += perf_search.tables(medians["search"])
        targets += perf_search.targets(medians["search"])
    if "lifecycle" in medians:
        cpu = cpu_table(medians["lifecycle"], CPU_GROUPS)
        cpu.title = "6. " + cpu.title
        tables.append(cpu)
        for name in ("worker", "api"):
            path = out / "profile" / f"{name}.speedscope.json"
            if path.exists():
                tables.append(hot_frames_table(path, f"6. py-spy, {name}: where its samples fall"))
    summary = summary_table(targets, info)
    text = [cfg.header(), f"  results in {out}", ""]
    for t in [*tables, summary]:
        text += [render(t), ""]
    for item, lines in notes.items():
        text += [f"note ({item}): {line}" for line in lines]
    doc: dict[str, object] = {
        "settings": cfg.describe(),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "items": {
            item: {
                "median": _json_floats(medians[item]),
                "runs": [_json_floats(o.metrics) for o in runs],
                "notes": notes[item],
            }
            for item, runs in results.items()
        },
        "tables": [t.as_json() for t in tables],
        "summary": [t.as_json() for t in targets],
    }
    return "\n".join(text), doc


def _json_floats(m: dict[str, float]) -> dict[str, float | None]:
    # NaN is not JSON.
    return {k: None if v != v else v for k, v in m.items()}


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bench.perf`."""
    cfg = parse_args(argv)
    out = cfg.out or RESULTS / datetime.now().strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    cfg.out = out
    began = time.monotonic()

    def say(line: str) -> None:
        print(f"[{time.monotonic() - began:7.1f}] {line}", flush=True)

    print(cfg.header(), flush=True)
    results = asyncio.run(run(cfg, out, say))
    text, doc = report(cfg, out, results)
    print("\n" + text, flush=True)
    body = json.dumps(doc, indent=1, ensure_ascii=False)
    (out / "results.json").write_text(body)
    (out / "report.txt").write_text(text + "\n")
    if cfg.json_path is not None:
        cfg.json_path.write_text(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
