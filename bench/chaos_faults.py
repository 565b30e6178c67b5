"""The faults of a chaos run: which process goes down, when, how, and for how long.

A fault is one crash or outage, or two at once: the worker killed while the gateway answers
503, Temporal killed while the worker is down, the API killed while edits are being sent.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from temporalio.client import Client

from bench.chaos_config import ChaosConfig
from bench.chaos_orders import ApiCaller
from bench.chaos_stack import POSTGRES, TEMPORAL, ChaosStack

WORKER = "worker"
API = "api"
# What else is wrong while the fault's process is down.
GATEWAY_OUTAGE = "the gateway answering 503"
WORKER_DOWN = "the worker down"
EDITS_IN_FLIGHT = "edits in flight"


@dataclass(frozen=True)
class FaultKind:
    """A way the system fails: its name in the table, the process, the signal, and what else
    is wrong at the same time."""

    name: str
    process: str
    sig: signal.Signals
    during: str = ""

    @property
    def crashed(self) -> frozenset[str]:
        """The processes this fault kills without letting them finish what they were doing."""
        killed = {self.process} if self.sig == signal.SIGKILL else set()
        if self.during == WORKER_DOWN:
            killed.add(WORKER)
        return frozenset(killed)


WORKER_KILL = FaultKind("worker killed", WORKER, signal.SIGKILL)
API_RESTART = FaultKind("API restarted", API, signal.SIGKILL)
TEMPORAL_RESTART = FaultKind("Temporal restarted", TEMPORAL, signal.SIGTERM)
PAYMENT_OUTAGE = FaultKind("payment gateway down", "payment-standin", signal.SIGTERM)
CARRIER_OUTAGE = FaultKind("carrier down", "carrier-standin", signal.SIGTERM)
POSTGRES_KILL = FaultKind("PostgreSQL killed", POSTGRES, signal.SIGKILL)
TEMPORAL_KILL = FaultKind("Temporal killed", TEMPORAL, signal.SIGKILL)
WORKER_KILL_IN_OUTAGE = FaultKind(
    "worker killed in a gateway outage", WORKER, signal.SIGKILL, GATEWAY_OUTAGE
)
TEMPORAL_KILL_WORKER_DOWN = FaultKind(
    "Temporal killed, worker down", TEMPORAL, signal.SIGKILL, WORKER_DOWN
)
API_KILL_WITH_EDITS = FaultKind("API killed, edits in flight", API, signal.SIGKILL, EDITS_IN_FLIGHT)


@dataclass(frozen=True)
class PlannedFault:
    kind: FaultKind
    at: float
    down_for: float


@dataclass
class InjectedFault:
    """A fault as it happened; `down_for` runs until every process answered again."""

    kind: FaultKind
    at: float
    down_for: float
    pid: int
    open_orders: int
    error: str = ""
    # What else the table says about it: edits in flight, workflows kept, the second process.
    detail: str = ""
    # Wall-clock bounds, to hold against what the stand-ins recorded (emails received).
    began: float = field(default_factory=time.time)
    ended: float = 0.0

    @property
    def how(self) -> str:
        return ", ".join(
            part for part in (f"{self.kind.sig.name} pid {self.pid}", self.detail) if part
        )


def plan_faults(cfg: ChaosConfig, placing_seconds: float) -> list[PlannedFault]:
    """Every fault once in its own slot of the run, in a seeded order, so none overlap
    (those that are two faults at once overlap by design)."""
    todo = (
        [(WORKER_KILL, cfg.worker_down_seconds)] * cfg.worker_kills
        + [(API_RESTART, cfg.api_down_seconds)] * cfg.api_restarts
        + [(TEMPORAL_RESTART, cfg.temporal_down_seconds)] * cfg.temporal_restarts
        + [(PAYMENT_OUTAGE, cfg.payment_outage_seconds)] * cfg.payment_outages
        + [(CARRIER_OUTAGE, cfg.carrier_outage_seconds)] * cfg.carrier_outages
        + [(POSTGRES_KILL, cfg.postgres_down_seconds)] * cfg.postgres_kills
        + [(TEMPORAL_KILL, cfg.temporal_down_seconds)] * cfg.temporal_kills
        + [(WORKER_KILL_IN_OUTAGE, cfg.worker_down_seconds)] * cfg.worker_kills_in_outage
        + [(TEMPORAL_KILL_WORKER_DOWN, cfg.temporal_down_seconds)] * cfg.temporal_kills_worker_down
        + [(API_KILL_WITH_EDITS, cfg.api_down_seconds)] * cfg.api_kills_with_edits
    )
    if not todo:
        return []
    rng = random.Random(cfg.seed)
    rng.shuffle(todo)
    # The first orders are placed on a healthy system, so every fault meets orders in flight.
    start = min(3.0, placing_seconds / 4)
    slot = max(1.0, (placing_seconds + cfg.fault_tail_seconds - start) / len(todo))
    # Edits are sent while orders are being placed: a fault that needs them takes a slot then.
    early = [i for i in range(len(todo)) if start + (i + 1) * slot <= placing_seconds]
    for i, (kind, _) in enumerate(todo):
        if kind.during == EDITS_IN_FLIGHT and i not in early:
            free = [j for j in early if todo[j][0].during != EDITS_IN_FLIGHT]
            if free:
                j = rng.choice(free)
                todo[i], todo[j] = todo[j], todo[i]
    return [
        PlannedFault(kind, start + i * slot + rng.uniform(0, max(0.0, slot - down) / 2), down)
        for i, (kind, down) in enumerate(todo)
    ]


class Injector:
    """Brings processes down and up again as the plan says."""

    def __init__(
        self,
        cfg: ChaosConfig,
        stack: ChaosStack,
        api: ApiCaller,
        open_orders: Callable[[], int],
        say: Callable[[str], None],
    ) -> None:
        self.cfg = cfg
        self.stack = stack
        self.api = api
        self.open_orders = open_orders
        self.say = say
        self.rng = random.Random(cfg.seed)
        self.started = time.monotonic()

    async def run(self, plan: list[PlannedFault], started: float) -> list[InjectedFault]:
        """Inject each fault at its time, one after the other; returns what happened."""
        done: list[InjectedFault] = []
        self.started = started
        for fault in plan:
            await asyncio.sleep(max(0.0, started + fault.at - time.monotonic()))
            record = InjectedFault(fault.kind, time.monotonic() - started, 0.0, 0, 0)
            try:
                await self._inject(fault, record)
            except Exception as exc:
                # The supervisor keeps trying; the table says this fault did not go as planned.
                record.error = f"{type(exc).__name__}: {exc}"[:200]
            record.down_for = time.monotonic() - started - record.at
            record.ended = time.time()
            done.append(record)
        return done

    async def _inject(self, fault: PlannedFault, record: InjectedFault) -> None:
        kind = fault.kind
        stack = self.stack
        if kind.during == GATEWAY_OUTAGE:
            await stack.gateway_outage(True)
            # Calls meet the outage first, and are being retried when the worker dies.
            await asyncio.sleep(1.0)
        worker_pid = 0
        if kind.during == WORKER_DOWN:
            worker_pid = await stack.bring_down(WORKER, signal.SIGKILL)
            await asyncio.sleep(0.5)
        if kind.during == EDITS_IN_FLIGHT:
            await self._meet_edits(record)
            # The fault is the kill; holding edits back for it was only its setting up.
            record.at = time.monotonic() - self.started
            record.began = time.time()
        # Temporal's state must outlive a SIGKILL: its database file is all it restarts from.
        kills_state = kind.process == TEMPORAL and kind.sig == signal.SIGKILL
        before = await self._workflow_count() if kills_state else None
        record.open_orders = self.open_orders()
        if kind.process == POSTGRES:
            record.pid = await stack.kill_postgres()
        else:
            record.pid = await stack.bring_down(kind.process, kind.sig)
        self.say(
            f"{record.at:6.1f} s  {kind.name} ({kind.sig.name} to pid {record.pid})"
            + (f", {record.detail}" if record.detail else "")
        )
        await asyncio.sleep(fault.down_for)
        try:
            if kind.process == POSTGRES:
                await stack.restart_postgres(record.pid)
            else:
                await stack.bring_up(kind.process)
            if worker_pid:
                record.detail = f"after the worker's (pid {worker_pid})"
                # Back after Temporal, which it needs to start.
                await stack.bring_up(WORKER)
        finally:
            if kind.during == GATEWAY_OUTAGE:
                await asyncio.sleep(1.0)
                await stack.gateway_outage(False)
        if before is not None:
            after = await self._workflow_count()
            kept = f"workflows {before} before, {after} after"
            record.detail = f"{record.detail}, {kept}" if record.detail else kept
            if after < before:
                record.error = f"{before - after} workflows lost with the server's state"

    async def _meet_edits(self, record: InjectedFault) -> None:
        """Hold edits back until a few are due, let them go together, and kill the API while
        they are on their way: some are applied and their answers lost."""
        held = await self.api.hold.gather(self.cfg.edits_in_flight, self.cfg.edit_wait_seconds)
        # The released edits are sent on the loop's next turns; this is long enough for them to
        # reach a workflow, too short for most to have been answered.
        await asyncio.sleep(self.rng.uniform(0.02, 0.08))
        flying = self.api.edits_in_flight
        record.detail = f"{flying} edits in flight ({held} held back for it)"
        if not flying:
            record.error = "no edit was in flight when the API died"

    async def _workflow_count(self) -> int:
        client = await Client.connect(self.stack.ports.temporal_address)
        return (await client.count_workflows()).count
