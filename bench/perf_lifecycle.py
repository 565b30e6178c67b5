"""Item 1: orders per second from POST /orders to COMPLETED, against a bare workflow on the
same Temporal server; while it runs, CPU per process and (optionally) py-spy profiles."""

from __future__ import annotations

from pathlib import Path

from bench.perf_bare import ACTIVITIES, run_bare, start_worker, stop_worker
from bench.perf_config import PerfConfig
from bench.perf_history import COUNTED, history_shape
from bench.perf_orders import order_body, place_and_watch
from bench.perf_profile import CpuMeter, SpyRecorder
from bench.perf_stack import PerfStack
from bench.perf_stats import Outcome, latency_metrics, rate, ratio
from bench.perf_table import Table, Target, number
from bench.perf_watch import ReadModel
from orderflow.settings import Settings
from workflows.contract import workflow_id_for_reference


async def run_lifecycle(
    stack: PerfStack, cfg: PerfConfig, rm: ReadModel, repeat: int, profile_dir: Path | None
) -> Outcome:
    out = Outcome()
    meter = CpuMeter(stack.process_groups())
    spies = []
    if profile_dir is not None:
        spies = [
            SpyRecorder(stack.pid(name), profile_dir / f"{name}.speedscope.json", cfg.profile_rate)
            for name in ("worker", "api")
        ]
    bodies = [order_body(i) for i in range(cfg.orders)]
    async with stack.api(cfg.concurrency) as http:
        for spy in spies:
            spy.start()
        meter.start()
        try:
            wave = await place_and_watch(
                http,
                rm,
                bodies,
                cfg.concurrency,
                f"life-{repeat}",
                {"COMPLETED"},
                cfg.timeout_seconds,
            )
        finally:
            meter.stop()
            for spy in spies:
                spy.stop()
    for spy in spies:
        out.note(spy.error)
    if spies:
        out.note(
            f"run {repeat + 1} ran under py-spy ({cfg.profile_rate} Hz, not pausing the processes)"
        )
    out.note(wave.stragglers())
    m = out.metrics
    m["orders"] = float(len(bodies))
    m["completed"] = float(wave.arrived)
    m["seconds"] = wave.seconds
    m["orders_per_s"] = rate(wave.arrived, wave.seconds)
    m.update(latency_metrics("e2e", wave.latencies(), scale=1.0))
    m.update(latency_metrics("post", wave.post_seconds()))
    m.update(meter.metrics())
    client = await stack.temporal()
    ours = [workflow_id_for_reference(oid) for oid in wave.ids]
    m.update({f"hist_{k}": v for k, v in (await history_shape(client, ours)).items()})

    await _bare(stack, cfg, repeat, out)
    m["ratio"] = ratio(m["orders_per_s"], m["bare_per_s"])
    m["server_ms"] = 1000 * ratio(m.get("cpu_s_temporal_server", float("nan")), m["completed"])
    m["bare_server_ms"] = 1000 * ratio(m["bare_cpu_s_temporal_server"], m["bare_completed"])
    # Were the server the only limit (its own cores, everything else scaled out), the rates
    # would stand in the inverse ratio of its CPU per workflow.
    m["server_ratio"] = ratio(m["bare_server_ms"], m["server_ms"])
    return out


async def _bare(stack: PerfStack, cfg: PerfConfig, repeat: int, out: Outcome) -> None:
    defaults = Settings()
    queue = f"perf-bare-{repeat}"
    worker = start_worker(
        stack.temporal_address,
        queue,
        defaults.worker_max_concurrent_activities,
        defaults.worker_max_cached_workflows,
    )
    # The server's CPU for the same number of bare workflows: what each costs the one process
    # that a deployment cannot spread over more machines by adding workers.
    meter = CpuMeter({"temporal server": [stack.pid("temporal")]})
    try:
        client = await stack.temporal()
        meter.start()
        try:
            result = await run_bare(client, cfg.orders, cfg.concurrency, queue, f"bare-{repeat}")
        finally:
            meter.stop()
        ids = [f"bare-{repeat}-{i}" for i in range(cfg.orders)]
        shape = await history_shape(client, ids)
    finally:
        stop_worker(worker)
    out.metrics.update({f"bare_hist_{k}": v for k, v in shape.items()})
    if result.completed < result.workflows:
        out.note(f"bare: {result.workflows - result.completed} workflow(s) did not complete")
    out.metrics["bare_workflows"] = float(result.workflows)
    out.metrics["bare_completed"] = float(result.completed)
    out.metrics["bare_seconds"] = result.seconds
    out.metrics["bare_per_s"] = rate(result.completed, result.seconds)
    out.metrics["bare_cpu_s_temporal_server"] = meter.used["temporal server"]


def tables(m: dict[str, float]) -> list[Table]:
    def s(key: str) -> str:
        return number(m.get(key, float("nan")), 2, "s")

    rows = [
        [
            "our orders: POST → COMPLETED",
            f"{number(m['completed'], 0)} / {number(m['orders'], 0)}",
            s("seconds"),
            number(m["orders_per_s"], 1),
            s("e2e_p50"),
            s("e2e_p95"),
            s("e2e_p99"),
        ],
        [
            f"bare workflow: {ACTIVITIES} no-op activities + 1 signal",
            f"{number(m['bare_completed'], 0)} / {number(m['bare_workflows'], 0)}",
            s("bare_seconds"),
            number(m["bare_per_s"], 1),
            "-",
            "-",
            "-",
        ],
    ]
    return [
        Table(
            "1. Full lifecycle throughput (same Temporal server, one after the other)",
            ["run", "done", "took", "per s", "p50", "p95", "p99"],
            rows,
            note=f"  ours / bare = {number(m['ratio'], 3)}; POST /orders under this load: "
            f"p50 {number(m['post_p50'], 1, 'ms')}, p99 {number(m['post_p99'], 1, 'ms')}",
        ),
        Table(
            "1. What one workflow asks of the server (mean over a sample of histories)",
            ["per workflow", "our order", "bare"],
            [
                [
                    name,
                    number(m.get(f"hist_{key}", float("nan")), 1),
                    number(m.get(f"bare_hist_{key}", float("nan")), 1),
                ]
                for key, (name, _) in COUNTED.items()
            ]
            + [
                [
                    "Temporal server CPU, ms",
                    number(m.get("server_ms", float("nan")), 1),
                    number(m.get("bare_server_ms", float("nan")), 1),
                ]
            ],
            note="  ours / bare were the server the only limit (bare's server CPU per workflow "
            f"over ours): {number(m.get('server_ratio', float('nan')), 2)}",
        ),
    ]


def targets(m: dict[str, float]) -> list[Target]:
    return [Target("lifecycle ours / bare", m.get("ratio", float("nan")), 1.0, "", "ge", 2)]


def informative(m: dict[str, float]) -> list[list[str]]:
    return [
        ["lifecycle orders/s", number(m["orders_per_s"], 1)],
        ["lifecycle p99 POST→COMPLETED", number(m["e2e_p99"], 2, "s")],
        ["bare workflows/s", number(m["bare_per_s"], 1)],
        ["server CPU per workflow, bare / ours", number(m.get("server_ratio", float("nan")), 2)],
    ]
