"""One real Temporal dev server, one real PostgreSQL and the real stand-ins for the whole run,
shared by the integration and the end-to-end tests (tests/conftest.py registers this module)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from api.app import create_app
from models.api_keys import Role, create_key
from orderflow.db import make_engine, make_sessions
from orderflow.embedded import start_postgres, start_temporal, stop_process, wait_for_temporal
from orderflow.migrate import upgrade
from orderflow.seed import seed
from orderflow.settings import Settings
from orderflow.temporal import connect
from orderflow.worker import build_dispatcher, build_worker
from providers import carrier_standin, payment_standin, smtp_standin
from providers.carrier import HttpCarrier
from providers.payment import HttpPaymentGateway
from providers.smtp_standin import SmtpStandin
from workflows.contract import workflow_id_for_reference

WEBHOOK_SECRET = "integration-test-secret"
PAYMENT_WEBHOOK_SECRET = "integration-test-payment-secret"
HISTORIES = Path(__file__).parent / "histories"


def standin_clients(settings: Settings, smtp_server: SmtpStandin) -> dict[str, httpx.AsyncClient]:
    """Clients of the payment, carrier and mail stand-ins' admin APIs, by Stack field."""
    return {
        "payment": httpx.AsyncClient(base_url=settings.payment_url, timeout=10),
        "carrier": httpx.AsyncClient(base_url=settings.carrier_url, timeout=10),
        "mail": httpx.AsyncClient(
            transport=httpx.ASGITransport(app=smtp_standin.create_app(smtp_server)),
            base_url="http://mail",
        ),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """An ASGI app served by uvicorn on a real port, in a thread with its own event loop."""

    def __init__(self, app: Any, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=port,
                log_level="warning",
                lifespan="on",
                timeout_graceful_shutdown=5,
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            threading.Event().wait(0.05)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: PostgreSQL runs as its own user when we are root, and pytest
    # resets its temp root to owner-only whenever another run starts.
    path = Path(tempfile.mkdtemp(prefix="orderflow-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(data_dir: Path) -> str:
    url = os.environ.get("ORDERFLOW_DATABASE_URL") or start_postgres(data_dir, keep=False)
    upgrade(url)
    seed(url)
    return url


@pytest.fixture(scope="session")
def temporal_address() -> Iterator[str]:
    port = free_port()
    proc = start_temporal(None, port, ui_port=0, ui=False)
    address = f"127.0.0.1:{port}"
    try:
        asyncio.run(wait_for_temporal(address, proc))
        yield address
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def payment_server(data_dir: Path, api_port: int) -> Iterator[ServerThread]:
    app = payment_standin.create_app(
        data_dir / "payment.sqlite",
        webhook_url=f"http://127.0.0.1:{api_port}/webhooks/payments",
        webhook_secret=PAYMENT_WEBHOOK_SECRET,
    )
    server = ServerThread(app, free_port())
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
def smtp_server(data_dir: Path) -> Iterator[SmtpStandin]:
    server = SmtpStandin(data_dir / "smtp.sqlite", port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def api_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def base_settings(
    data_dir: Path,
    database_url: str,
    temporal_address: str,
    payment_server: ServerThread,
    smtp_server: SmtpStandin,
    api_port: int,
) -> Settings:
    carrier_port = free_port()
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        temporal_address=temporal_address,
        api_port=api_port,
        payment_url=payment_server.url,
        carrier_url=f"http://127.0.0.1:{carrier_port}",
        carrier_port=carrier_port,
        carrier_step_seconds=0.05,
        webhook_secret=WEBHOOK_SECRET,
        payment_webhook_secret=PAYMENT_WEBHOOK_SECRET,
        smtp_port=smtp_server.port,
        outbox_poll_seconds=0.1,
        after_sales_window_seconds=1.0,
        mail_hold_seconds=0.2,
        retry_max_interval_seconds=0.5,
        # Tests place many orders for one customer; the review tests lower these themselves.
        review_orders_per_hour=10_000,
        review_amount_over=Decimal("100000"),
        review_new_customer_amount_over=Decimal("100000"),
        sla_seconds={},
    )


@pytest.fixture(scope="session")
def carrier_server(base_settings: Settings) -> Iterator[ServerThread]:
    app = carrier_standin.create_app(
        base_settings.data_dir / "carrier.sqlite",
        step_seconds=base_settings.carrier_step_seconds,
        webhook_secret=WEBHOOK_SECRET,
    )
    server = ServerThread(app, base_settings.carrier_port)
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
def api_server(base_settings: Settings, carrier_server: ServerThread) -> Iterator[ServerThread]:
    """The API on a real port, where the carrier stand-in posts its webhooks."""
    server = ServerThread(create_app(base_settings), base_settings.api_port)
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
async def temporal_client(base_settings: Settings) -> Client:
    return await connect(base_settings)


@pytest.fixture(scope="session")
async def engine(base_settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(base_settings.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessions(engine)


@pytest.fixture(scope="session")
async def staff_key(sessions: async_sessionmaker[AsyncSession]) -> str:
    async with sessions.begin() as s:
        _, token = await create_key(s, "tests", Role.STAFF)
    return token


@dataclass
class Stack:
    """What a test drives: the API, the worker, the database and the stand-ins."""

    settings: Settings
    api: httpx.AsyncClient
    client: Client
    sessions: async_sessionmaker[AsyncSession]
    payment: httpx.AsyncClient
    carrier: httpx.AsyncClient
    mail: httpx.AsyncClient
    app: Any = None
    staff_key: str = ""
    worker: Worker | None = None
    _made: list[Any] = field(default_factory=list)

    def api_as(self, key: str | None) -> httpx.AsyncClient:
        """An API client that sends `key` (or no key at all)."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        made = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://api",
            timeout=60,
            headers=headers,
        )
        self._made.append(made)
        return made

    async def key(self, role: Role, customer_id: str | None = None) -> str:
        """A new API key of the role (a customer key for `customer_id`)."""
        async with self.sessions.begin() as s:
            _, token = await create_key(s, f"test-{role.value}", role, customer_id)
        return token

    async def start_worker(self) -> Worker:
        gateway = HttpPaymentGateway(self.settings.payment_url)
        carrier = HttpCarrier(self.settings.carrier_url)
        self._made += [gateway, carrier]
        self.worker = build_worker(self.client, self.settings, self.sessions, gateway, carrier)
        self._worker_task = asyncio.create_task(self.worker.run())
        # As in production, the outbox dispatcher runs beside the worker.
        self._stop_dispatch = asyncio.Event()
        dispatcher = build_dispatcher(self.settings, self.sessions)
        self._dispatch_task = asyncio.create_task(dispatcher.run(self._stop_dispatch))
        return self.worker

    async def stop_worker(self) -> None:
        if self.worker is not None:
            await self.worker.shutdown()
            await self._worker_task
            self._stop_dispatch.set()
            await self._dispatch_task
            self.worker = None

    async def emails(self, order_id: str) -> list[dict[str, Any]]:
        """Every email the SMTP stand-in received about one order."""
        messages = (await self.mail.get("/messages")).json()
        return [m for m in messages if m["headers"].get("X-Orderflow-Order") == order_id]

    async def sql(self, query: str, **params: Any) -> list[Any]:
        """Run one statement in its own transaction; the rows it returns, if any."""
        async with self.sessions.begin() as s:
            result = await s.execute(text(query), params)
            return list(result.all()) if result.returns_rows else []

    async def add_product(self, stock: dict[str, int], price: str = "10.00") -> str:
        """A fresh SKU only this test uses, with the given units per warehouse."""
        sku = f"SKU-T-{uuid.uuid4().hex[:10].upper()}"
        async with self.sessions.begin() as s:
            await s.execute(
                text(
                    "insert into products (sku, name, variant, category, unit_price, currency, "
                    "active) values (:sku, 'Test item', '', 'test', :price, 'USD', true)"
                ),
                {"sku": sku, "price": Decimal(price)},
            )
            for wh, qty in stock.items():
                await s.execute(
                    text(
                        "insert into stock (sku, warehouse_id, on_hand, reserved) "
                        "values (:sku, :wh, :qty, 0)"
                    ),
                    {"sku": sku, "wh": wh, "qty": qty},
                )
        return sku

    async def stock(self, sku: str) -> dict[str, tuple[int, int]]:
        rows = await self.sql(
            "select warehouse_id, on_hand, reserved from stock where sku=:s", s=sku
        )
        return {wh: (on, res) for wh, on, res in rows}

    async def save_history(self, order_id: str, name: str, closed: bool = False) -> None:
        """With ORDERFLOW_RECORD_HISTORIES=1, keep this order's (or return's) history for the
        replay tests; `closed` waits for its workflow to end first."""
        if os.environ.get("ORDERFLOW_RECORD_HISTORIES") != "1":
            return
        handle = self.client.get_workflow_handle(workflow_id_for_reference(order_id))
        if closed:
            await asyncio.wait_for(handle.result(), 30)
        history = await handle.fetch_history()
        HISTORIES.mkdir(exist_ok=True)
        (HISTORIES / f"{name}.json").write_text(history.to_json())

    async def aclose(self) -> None:
        await self.stop_worker()
        for made in self._made:
            await made.aclose()
        await self.api.aclose()
        await self.payment.aclose()
        await self.carrier.aclose()
        await self.mail.aclose()
