"""The faults of a chaos run: which process goes down, when, how, and for how long."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.chaos_config import ChaosConfig
from bench.chaos_stack import TEMPORAL, ChaosStack


@dataclass(frozen=True)
class FaultKind:
    """A way one process fails: its name in the table, the process, the signal."""

    name: str
    process: str
    sig: signal.Signals


WORKER_KILL = FaultKind("worker killed", "worker", signal.SIGKILL)
API_RESTART = FaultKind("API restarted", "api", signal.SIGKILL)
TEMPORAL_RESTART = FaultKind("Temporal restarted", TEMPORAL, signal.SIGTERM)
PAYMENT_OUTAGE = FaultKind("payment gateway down", "payment-standin", signal.SIGTERM)
CARRIER_OUTAGE = FaultKind("carrier down", "carrier-standin", signal.SIGTERM)


@dataclass(frozen=True)
class PlannedFault:
    kind: FaultKind
    at: float
    down_for: float


@dataclass
class InjectedFault:
    """A fault as it happened; `down_for` runs until the process answered again."""

    kind: FaultKind
    at: float
    down_for: float
    pid: int
    open_orders: int
    error: str = ""


def plan_faults(cfg: ChaosConfig, placing_seconds: float) -> list[PlannedFault]:
    """Every fault once in its own slot of the run, in a seeded order, so none overlap."""
    todo = (
        [(WORKER_KILL, cfg.worker_down_seconds)] * cfg.worker_kills
        + [(API_RESTART, cfg.api_down_seconds)] * cfg.api_restarts
        + [(TEMPORAL_RESTART, cfg.temporal_down_seconds)] * cfg.temporal_restarts
        + [(PAYMENT_OUTAGE, cfg.payment_outage_seconds)] * cfg.payment_outages
        + [(CARRIER_OUTAGE, cfg.carrier_outage_seconds)] * cfg.carrier_outages
    )
    if not todo:
        return []
    rng = random.Random(cfg.seed)
    rng.shuffle(todo)
    # The first orders are placed on a healthy system, so every fault meets orders in flight.
    start = min(3.0, placing_seconds / 4)
    slot = max(1.0, (placing_seconds + cfg.fault_tail_seconds - start) / len(todo))
    return [
        PlannedFault(kind, start + i * slot + rng.uniform(0, max(0.0, slot - down) / 2), down)
        for i, (kind, down) in enumerate(todo)
    ]


async def inject(
    stack: ChaosStack,
    plan: list[PlannedFault],
    started: float,
    open_orders: Callable[[], int],
    say: Callable[[str], None],
) -> list[InjectedFault]:
    """Inject each fault at its time, one after the other; returns what happened."""
    done: list[InjectedFault] = []
    for fault in plan:
        await asyncio.sleep(max(0.0, started + fault.at - time.monotonic()))
        at = time.monotonic() - started
        name = fault.kind.process
        pid = await stack.bring_down(name, fault.kind.sig)
        record = InjectedFault(fault.kind, at, 0.0, pid, open_orders())
        say(f"{at:6.1f} s  {fault.kind.name} ({fault.kind.sig.name} to pid {pid})")
        await asyncio.sleep(fault.down_for)
        try:
            await stack.bring_up(name)
        except Exception as exc:
            # The supervisor keeps trying; the table says this start failed.
            record.error = f"{type(exc).__name__}: {exc}"[:200]
        record.down_for = time.monotonic() - started - at
        done.append(record)
    return done
