"""`orderflow dev`: PostgreSQL, Temporal, the stand-ins, the worker and the API on one machine."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import httpx

from orderflow.dev_keys import DEV_CUSTOMER, ensure_dev_keys
from orderflow.embedded import (
    child_env,
    start_postgres,
    start_temporal,
    stop_process,
    wait_for_temporal,
)
from orderflow.migrate import upgrade
from orderflow.seed import seed
from orderflow.settings import Settings

# Shorter than production so a demo order completes while you watch; any ORDERFLOW_ variable
# set in the environment wins over these.
DEV_DEFAULTS = {"after_sales_window_seconds": "60"}
# Started in this order, stopped in reverse.
SERVICES = ("payment-standin", "carrier-standin", "smtp-standin", "worker", "api")
WORKER = "worker"


def service_names(worker_processes: int) -> tuple[str, ...]:
    """SERVICES with as many worker processes as asked: "worker", "worker-2", ...

    One Python process uses about one core, so on a machine with more, more workers on the
    same task queue move more orders.
    """
    extra = tuple(f"{WORKER}-{i}" for i in range(2, worker_processes + 1))
    return tuple(n for s in SERVICES for n in ((s, *extra) if s == WORKER else (s,)))


def command_of(service: str) -> str:
    """The `orderflow` command a service runs."""
    return WORKER if service.startswith(WORKER) else service


def _secret(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_hex(32)
    path.write_text(value)
    path.chmod(0o600)
    return value


def _spawn(name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "orderflow", command_of(name)], env=env, stdin=subprocess.DEVNULL
    )


def _wait_healthy(url: str, procs: dict[str, subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        dead = [n for n, p in procs.items() if p.poll() is not None]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} stopped during start-up")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not become healthy in {timeout:.0f} s")
        time.sleep(0.3)


def run_dev_stack(settings: Settings) -> int:
    """Start everything, print where it is, supervise until Ctrl-C, then stop cleanly."""
    started = time.monotonic()
    data = settings.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    print(f"orderflow dev stack, data in {data}", flush=True)

    database_url = settings.database_url or start_postgres(data)
    upgrade(database_url)
    seed(database_url)
    keys = asyncio.run(ensure_dev_keys(settings, database_url))

    host, _, port = settings.temporal_address.rpartition(":")
    temporal = start_temporal(data / "temporal.db", int(port), settings.temporal_ui_port, host)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def request_stop(_sig: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        asyncio.run(wait_for_temporal(settings.temporal_address, temporal))
        overrides = {
            k: v for k, v in DEV_DEFAULTS.items() if f"ORDERFLOW_{k.upper()}" not in os.environ
        }
        env = child_env(
            database_url=database_url,
            data_dir=str(data),
            webhook_secret=settings.webhook_secret or _secret(data / "webhook-secret"),
            payment_webhook_secret=settings.payment_webhook_secret
            or _secret(data / "payment-webhook-secret"),
            # Console sessions outlive a restart of the stack.
            console_secret=settings.console_secret or _secret(data / "console-secret"),
            **overrides,
        )
        services = service_names(settings.worker_processes)
        for name in services:
            procs[name] = _spawn(name, env)
        api = settings.api_base_url
        _wait_healthy(f"{api}/healthz", procs, timeout=60)
        print(
            "\norderflow is running"
            f" (started in {time.monotonic() - started:.1f} s)\n"
            f"  console         {api}/console   (sign in with a key below)\n"
            f"  API docs        {api}/docs\n"
            f"  Temporal UI     http://{host}:{settings.temporal_ui_port}\n"
            f"  Temporal gRPC   {settings.temporal_address}\n"
            f"  payment stand-in {settings.payment_url}   carrier stand-in {settings.carrier_url}\n"
            f"  emails sent     http://{settings.api_host}:{settings.mail_http_port}/messages\n"
            f"  PostgreSQL      {database_url}\n"
            f"  staff key       {keys['staff']}\n"
            f"  customer key    {keys['customer']}   (customer {DEV_CUSTOMER})\n"
            f"  admin key       {keys['admin']}\n"
            "  try: curl -H 'Authorization: Bearer <staff key>' "
            f"{api}/orders   (the orderflow commands use the staff key by themselves)\n"
            "Press Ctrl-C to stop; the next start keeps the data and resumes orders in flight.\n",
            flush=True,
        )
        while not stopping:
            time.sleep(0.5)
            if temporal.poll() is not None:
                print("temporal dev server stopped; shutting down", flush=True)
                return 1
            for name, proc in procs.items():
                if proc.poll() is not None and not stopping:
                    print(f"{name} exited with {proc.returncode}; restarting", flush=True)
                    procs[name] = _spawn(name, env)
        return 0
    finally:
        print("stopping…", flush=True)
        for proc in reversed(list(procs.values())):
            stop_process(proc)
        stop_process(temporal)
        print("stopped", flush=True)
