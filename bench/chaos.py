"""Crashes and outages while orders run (§10): `python -m bench.chaos [--orders 300]`.

Starts a stack of its own (embedded PostgreSQL, the Temporal dev server on a database file,
the payment, carrier and SMTP stand-ins, a worker and the API, each an OS process on a free
port, with short timers), places a seeded mix of orders through the API and drives them (card,
flaky card, two-warehouse parcels, edits, cancels, pay-later, declines, backorders served by a
purchase order, a lost parcel refunded, pay-later orders paid by a gateway transfer or twice at
once). Meanwhile it SIGKILLs the worker several times, SIGKILLs PostgreSQL and the Temporal
server and starts them again on the same data, restarts the API, stops the payment gateway and
the carrier for a while, and overlaps faults: the worker killed during a gateway outage,
Temporal killed while the worker is down, the API killed with edits in flight. Every change
the run asks for carries an Idempotency-Key and is retried with it. Once every order has
settled it checks the invariants against PostgreSQL, the stand-ins' own state, the workflows
and every answer the run got, prints the faults and the invariants as tables, and exits 1 if
any invariant was violated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.chaos_checks import Invariant, check_all
from bench.chaos_config import ChaosConfig
from bench.chaos_evidence import Crash, gather_evidence, read_stock
from bench.chaos_faults import InjectedFault, Injector, plan_faults
from bench.chaos_orders import (
    ApiCaller,
    OrderDriver,
    OrderRun,
    StatusBoard,
    plan_orders,
    prepare_catalog,
    receive_scarce,
)
from bench.chaos_stack import ChaosStack, UnplannedExit, api_client, standin_client
from orderflow.db import make_engine, make_sessions
from orderflow.settings import Settings
from orderflow.temporal import connect

Say = Callable[[str], None]


@dataclass
class ChaosReport:
    """What a run did and what held."""

    orders: int
    accepted: int
    seconds: float
    faults: list[InjectedFault]
    unplanned: list[UnplannedExit]
    invariants: list[Invariant]
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    api_calls: int = 0
    api_retries: int = 0
    restock: str = ""
    settled_in: float = 0.0

    @property
    def ok(self) -> bool:
        return all(inv.held for inv in self.invariants)


async def run_chaos(cfg: ChaosConfig, say: Say = print) -> ChaosReport:
    """Run the whole exercise on a stack of its own and report."""
    for attempt in (1, 2):
        data = cfg.data_dir or Path(tempfile.mkdtemp(prefix="orderflow-chaos-"))
        stack = ChaosStack(data, cfg.stack_settings(), keep=cfg.data_dir is not None)
        began = time.monotonic()
        say(f"starting the stack in {data}")
        try:
            try:
                await stack.start(prepare=prepare_catalog)
            except (RuntimeError, TimeoutError) as exc:
                # A free port taken by another program before ours bound it: new ports, once.
                if attempt == 2 or cfg.data_dir is not None:
                    raise
                say(f"the stack did not start ({exc}); once more on other ports")
                continue
            say(f"stack up in {time.monotonic() - began:.1f} s; logs in {stack.log_dir}")
            return await _exercise(cfg, stack, say)
        finally:
            await stack.stop()
            if cfg.data_dir is None:
                shutil.rmtree(data, ignore_errors=True)
    raise AssertionError("unreachable")


async def _exercise(cfg: ChaosConfig, stack: ChaosStack, say: Say) -> ChaosReport:
    engine = make_engine(stack.database_url, pool_size=4)
    sessions = make_sessions(engine)
    board = StatusBoard(sessions)
    board_task = asyncio.create_task(board.run())
    try:
        async with (
            api_client(stack.ports.api_url, stack.api_key) as http,
            standin_client(stack.ports.payment_url, timeout=10) as gateway,
        ):
            return await _orders_under_faults(cfg, stack, sessions, board, http, gateway, say)
    finally:
        board_task.cancel()
        await engine.dispose()


async def _orders_under_faults(
    cfg: ChaosConfig,
    stack: ChaosStack,
    sessions: async_sessionmaker[AsyncSession],
    board: StatusBoard,
    http: httpx.AsyncClient,
    gateway: httpx.AsyncClient,
    say: Say,
) -> ChaosReport:
    baseline = {place: on for place, (on, _) in (await read_stock(sessions)).items()}
    plans = plan_orders(cfg.orders, cfg.rate, cfg.seed)
    runs = [OrderRun(p) for p in plans]
    placing = plans[-1].at if plans else 0.0
    api = ApiCaller(http, patience=cfg.step_seconds)
    driver = OrderDriver(api, board, cfg.step_seconds, gateway)

    def open_orders() -> int:
        return board.open_orders({r.order_id: r.expected for r in runs if r.order_id})

    started = time.monotonic()
    say(f"placing {len(runs)} orders over {placing:.0f} s while faults are injected")
    injector = Injector(cfg, stack, api, open_orders, say)
    faults = asyncio.create_task(injector.run(plan_faults(cfg, placing), started))
    drives = [asyncio.create_task(driver.drive(r, started)) for r in runs]
    # Backordered orders wait for goods: received once every order has been placed.
    restock = await receive_scarce(api, runs, cfg.seed)
    say(f"{time.monotonic() - started:6.1f} s  {restock}")
    injected = await faults
    await asyncio.gather(*drives)
    say(f"{time.monotonic() - started:6.1f} s  every order placed and driven; settling")
    settle_began = time.monotonic()
    await _settle(cfg, sessions, board, runs)
    settled_in = time.monotonic() - settle_began
    say(f"{time.monotonic() - started:6.1f} s  settled; checking invariants")

    client = await connect(Settings(temporal_address=stack.ports.temporal_address))
    evidence = await gather_evidence(
        sessions, client, stack.ports, baseline, _crashes(injected, stack)
    )
    if cfg.data_dir is not None:
        # Kept with the data, to look into any order afterwards.
        (cfg.data_dir / "orders.json").write_text(
            json.dumps(
                [
                    {
                        "order_id": r.order_id,
                        "kind": r.kind.value,
                        "expected": sorted(r.expected),
                        "notes": r.notes,
                        "edits": [
                            {"what": e.what, "key": e.key, "answers": [str(a) for a in e.attempts]}
                            for e in r.edits
                        ],
                    }
                    for r in runs
                ],
                indent=1,
            )
        )
    outcomes: dict[str, Counter[str]] = {}
    for r in runs:
        status = evidence.orders.get(r.order_id, {}).get("status", "not accepted")
        outcomes.setdefault(r.kind.value, Counter())[status] += 1
    return ChaosReport(
        orders=len(runs),
        accepted=sum(1 for r in runs if r.order_id),
        seconds=time.monotonic() - started,
        faults=injected,
        unplanned=list(stack.unplanned),
        invariants=check_all(evidence, runs),
        outcomes=outcomes,
        api_calls=api.calls,
        api_retries=api.retries,
        restock=restock,
        settled_in=settled_in,
    )


def _crashes(injected: list[InjectedFault], stack: ChaosStack) -> list[Crash]:
    """Every process killed, by a fault or on its own, with wall-clock bounds."""
    crashes = [
        Crash(f.kind.name, f.kind.crashed, f.began, f.ended) for f in injected if f.kind.crashed
    ]
    # The stack's clock started with its services; the run's own a little later.
    offset = time.time() - time.monotonic()
    for u in stack.unplanned:
        at = stack.started_at + u.at + offset
        crashes.append(Crash(f"{u.name} exited unasked", frozenset({u.name}), at - 1.0, at))
    return crashes


async def _settle(
    cfg: ChaosConfig,
    sessions: async_sessionmaker[AsyncSession],
    board: StatusBoard,
    runs: list[OrderRun],
) -> None:
    """Wait until every order is where it may end and no email waits, or until nothing has
    moved for longer than any timer of the run; the checks then report what did not get there."""
    deadline = time.monotonic() + cfg.settle_seconds
    quiet = 30 + max(cfg.new_payment_method_seconds, 4 * cfg.carrier_step_seconds)
    final = {r.order_id: r.expected for r in runs if r.order_id}
    while time.monotonic() < deadline:
        async with sessions() as s:
            pending = await s.scalar(text("select count(*) from outbox where status = 'pending'"))
        if not pending and time.monotonic() - board.changed_at > quiet:
            return
        if not board.open_orders(final) and len(board.seen) >= len(final) and not pending:
            # One more round, so a status that is about to move again is seen moving.
            await asyncio.sleep(2 * cfg.carrier_step_seconds + 1)
            if not board.open_orders(final):
                return
        await asyncio.sleep(1)


# ---- the tables ------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), line, *(fmt.format(*r) for r in rows)])


def format_report(r: ChaosReport) -> str:
    """The run as tables: faults injected, invariants, and how the orders ended."""
    faults = [
        [
            f.kind.name,
            f"{f.at:.1f} s",
            f"{f.down_for:.1f} s",
            f.how,
            str(f.open_orders),
            f.error or "back up",
        ]
        for f in r.faults
    ] + [
        [f"{u.name} exited unasked", f"{u.at:.1f} s", "-", f"code {u.returncode}", "-", "restarted"]
        for u in r.unplanned
    ]
    invariants = [
        [
            f"({i.section}) {i.name}",
            "held" if i.held else "VIOLATED",
            str(i.checked),
            str(len(i.violations)),
            i.note,
        ]
        for i in r.invariants
    ]
    outcomes = [
        [kind, str(sum(c.values())), ", ".join(f"{s} {n}" for s, n in sorted(c.items()))]
        for kind, c in sorted(r.outcomes.items())
    ]
    parts = [
        f"chaos run: {r.orders} orders ({r.accepted} accepted) in {r.seconds:.0f} s, "
        f"settled {r.settled_in:.0f} s after the last step; {r.api_calls} API calls, "
        f"{r.api_retries} retries through faults; {r.restock}",
        "",
        _table(["fault", "at", "down for", "how", "orders open", "outcome"], faults),
        "",
        _table(["invariant", "result", "checked", "violations", "note"], invariants),
        "",
        _table(["orders", "count", "ended as"], outcomes),
    ]
    for i in r.invariants:
        if i.violations:
            parts += ["", f"({i.section}) {i.name}: {len(i.violations)} violation(s)"]
            parts += [f"  {v}" for v in i.violations[:20]]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bench.chaos`."""
    d = ChaosConfig()
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n")[0])
    p.add_argument("--orders", type=int, default=d.orders)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--rate", type=float, default=d.rate, help="orders placed per second")
    p.add_argument("--worker-kills", type=int, default=d.worker_kills)
    p.add_argument("--api-restarts", type=int, default=d.api_restarts)
    p.add_argument("--temporal-restarts", type=int, default=d.temporal_restarts)
    p.add_argument("--postgres-kills", type=int, default=d.postgres_kills)
    p.add_argument("--temporal-kills", type=int, default=d.temporal_kills)
    p.add_argument("--worker-kills-in-outage", type=int, default=d.worker_kills_in_outage)
    p.add_argument("--temporal-kills-worker-down", type=int, default=d.temporal_kills_worker_down)
    p.add_argument("--api-kills-with-edits", type=int, default=d.api_kills_with_edits)
    p.add_argument("--worker-down", type=float, default=d.worker_down_seconds, metavar="S")
    p.add_argument("--temporal-down", type=float, default=d.temporal_down_seconds, metavar="S")
    p.add_argument("--postgres-down", type=float, default=d.postgres_down_seconds, metavar="S")
    p.add_argument("--payment-outage", type=float, default=d.payment_outage_seconds, metavar="S")
    p.add_argument("--carrier-outage", type=float, default=d.carrier_outage_seconds, metavar="S")
    p.add_argument("--carrier-step", type=float, default=d.carrier_step_seconds, metavar="S")
    p.add_argument("--after-sales", type=float, default=d.after_sales_seconds, metavar="S")
    p.add_argument("--release", type=float, default=d.warehouse_release_seconds, metavar="S")
    p.add_argument("--settle", type=float, default=d.settle_seconds, metavar="S")
    p.add_argument("--data-dir", type=Path, help="keep the stack's data and logs here")
    a = p.parse_args(argv)
    cfg = ChaosConfig(
        orders=a.orders,
        seed=a.seed,
        rate=a.rate,
        worker_kills=a.worker_kills,
        api_restarts=a.api_restarts,
        temporal_restarts=a.temporal_restarts,
        postgres_kills=a.postgres_kills,
        temporal_kills=a.temporal_kills,
        worker_kills_in_outage=a.worker_kills_in_outage,
        temporal_kills_worker_down=a.temporal_kills_worker_down,
        api_kills_with_edits=a.api_kills_with_edits,
        worker_down_seconds=a.worker_down,
        temporal_down_seconds=a.temporal_down,
        postgres_down_seconds=a.postgres_down,
        payment_outage_seconds=a.payment_outage,
        carrier_outage_seconds=a.carrier_outage,
        carrier_step_seconds=a.carrier_step,
        after_sales_seconds=a.after_sales,
        warehouse_release_seconds=a.release,
        settle_seconds=a.settle,
        data_dir=a.data_dir,
    )
    began = time.monotonic()

    def say(line: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}] {line}", flush=True)

    report = asyncio.run(run_chaos(cfg, say))
    print("\n" + format_report(report), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
