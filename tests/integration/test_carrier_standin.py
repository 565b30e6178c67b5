"""The carrier stand-in over real HTTP: bookings, cancels and signed tracking webhooks."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from providers.carrier import Booking, CarrierRejected, CarrierUnavailable, HttpCarrier
from providers.carrier_standin import _SCHEMA, BookBody, ShipmentStore, create_app
from providers.webhooks import WebhookSignatureError, verify

SECRET = "whsec_carrier_test"
STEP = 0.05
NORMAL = ["PICKED_UP", "IN_TRANSIT", "OUT_FOR_DELIVERY", "DELIVERED"]


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run `app` with uvicorn on a free local port in a thread; yield its base URL."""
    # IPPROTO_TCP spelled out: asyncio only turns Nagle off on sockets that say so, and with
    # Nagle on every request waits for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


async def eventually(predicate: Callable[[], bool | Awaitable[bool]], within: float = 5.0) -> None:
    """Wait until `predicate` holds, failing after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        outcome = predicate()
        if outcome if isinstance(outcome, bool) else await outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


class Receiver:
    """A webhook endpoint that checks signatures and can be told to fail its next requests."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.lock = threading.Lock()
        self.accepted: list[dict[str, Any]] = []
        self.attempts: list[str] = []
        self.bad_signatures: list[str] = []
        self.failures_left: dict[str, int] = {}
        self.app = FastAPI()
        self.app.add_api_route("/hook", self.hook, methods=["POST"])

    async def hook(self, request: Request) -> Response:
        """Record one delivery attempt and answer it."""
        body = await request.body()
        payload = await request.json()
        with self.lock:
            self.attempts.append(payload["event_id"])
            try:
                verify(self.secret, request.headers, body, time.time(), 300)
            except WebhookSignatureError as exc:
                self.bad_signatures.append(exc.reason)
                return Response(status_code=401)
            if self.failures_left.get(payload["reference"], 0) > 0:
                self.failures_left[payload["reference"]] -= 1
                return Response(status_code=500)
            # Delivery is at least once, so duplicates are dropped as the real receiver does.
            if all(e["event_id"] != payload["event_id"] for e in self.accepted):
                self.accepted.append(payload)
        return Response(status_code=204)

    def reset(self) -> None:
        """Forget everything received."""
        with self.lock:
            self.accepted.clear()
            self.attempts.clear()
            self.bad_signatures.clear()
            self.failures_left.clear()

    def fail(self, reference: str, times: int) -> None:
        """Answer 500 to the next `times` events of the shipment with this reference."""
        with self.lock:
            self.failures_left[reference] = times

    def events(self, shipment_id: str) -> list[dict[str, Any]]:
        """Accepted events of one shipment, in arrival order."""
        with self.lock:
            return [e for e in self.accepted if e["shipment_id"] == shipment_id]

    def types(self, shipment_id: str) -> list[str]:
        """Accepted event types of one shipment, in arrival order."""
        return [e["type"] for e in self.events(shipment_id)]


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    hooks = Receiver(SECRET)
    with serve(hooks.app) as url:
        yield hooks, f"{url}/hook"


@pytest.fixture(scope="module")
def carrier_url() -> Iterator[str]:
    with serve(create_app(step_seconds=STEP, webhook_secret=SECRET)) as url:
        yield url


@pytest.fixture
async def admin(carrier_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=carrier_url, timeout=5.0) as client:
        (await client.post("/_admin/reset")).raise_for_status()
        yield client


@pytest.fixture
def hooks(receiver: tuple[Receiver, str], admin: httpx.AsyncClient) -> Receiver:
    receiver[0].reset()
    return receiver[0]


@pytest.fixture
def hook_url(receiver: tuple[Receiver, str]) -> str:
    return receiver[1]


@pytest.fixture
async def carrier(carrier_url: str, admin: httpx.AsyncClient) -> AsyncIterator[HttpCarrier]:
    client = HttpCarrier(carrier_url, timeout=2.0)
    yield client
    await client.aclose()


def ship_to(postal_code: str = "10115") -> dict[str, Any]:
    """A delivery address; the postal code picks the carrier's scenario."""
    return {
        "name": "Ada Lovelace",
        "line1": "Main Street 1",
        "city": "Berlin",
        "postal_code": postal_code,
        "country": "DE",
    }


def types_are(hooks: Receiver, shipment_id: str, expected: list[str]) -> Callable[[], bool]:
    """A condition: the shipment's accepted event types are exactly `expected`."""
    return lambda: hooks.types(shipment_id) == expected


async def book(
    carrier: HttpCarrier, hook_url: str, postal_code: str = "10115", reference: str = ""
) -> Booking:
    """Book a one-item parcel to `postal_code`."""
    return await carrier.book(
        idempotency_key=uuid.uuid4().hex,
        reference=reference or f"ord_{uuid.uuid4().hex[:8]}",
        ship_to=ship_to(postal_code),
        items=[{"sku": "SKU-1", "quantity": 2}],
        webhook_url=hook_url,
    )


async def admin_state(admin: httpx.AsyncClient, shipment_id: str) -> dict[str, Any]:
    """The stand-in's internal view of one shipment."""
    response = await admin.get("/_admin/state")
    response.raise_for_status()
    (shipment,) = [s for s in response.json()["shipments"] if s["shipment_id"] == shipment_id]
    return shipment


async def test_booked_shipment_delivers_every_event_in_order_signed(
    carrier: HttpCarrier, hooks: Receiver, hook_url: str
) -> None:
    booking = await book(carrier, hook_url)
    assert booking.status == "booked"
    assert booking.tracking_number

    await eventually(lambda: len(hooks.events(booking.shipment_id)) == len(NORMAL))
    events = hooks.events(booking.shipment_id)
    assert [e["type"] for e in events] == NORMAL
    assert len({e["event_id"] for e in events}) == len(NORMAL)
    assert hooks.bad_signatures == []
    for event in events:
        assert event["tracking_number"] == booking.tracking_number
        assert event["reference"] == booking.reference
        assert event["detail"]
        assert datetime.fromisoformat(event["occurred_at"]).utcoffset() == timedelta(0)

    shipment = await carrier.get(booking.shipment_id)
    assert shipment.status == "delivered"
    assert [e.event_id for e in shipment.events] == [e["event_id"] for e in events]


@pytest.mark.parametrize(
    ("postal_code", "expected"),
    [
        (
            "99999",
            [
                "PICKED_UP",
                "IN_TRANSIT",
                "OUT_FOR_DELIVERY",
                "DELIVERY_FAILED",
                "OUT_FOR_DELIVERY",
                "DELIVERED",
            ],
        ),
        ("00000", ["PICKED_UP", "IN_TRANSIT", "LOST"]),
    ],
)
async def test_scenario_sequences(
    carrier: HttpCarrier,
    admin: httpx.AsyncClient,
    hooks: Receiver,
    hook_url: str,
    postal_code: str,
    expected: list[str],
) -> None:
    booking = await book(carrier, hook_url, postal_code)
    await eventually(lambda: len(hooks.types(booking.shipment_id)) == len(expected))
    assert hooks.types(booking.shipment_id) == expected

    state = await admin_state(admin, booking.shipment_id)
    # Nothing is scheduled after the last event, and there is no next one to force.
    assert state["waiting_since"] is None
    assert state["status"] == expected[-1].lower()
    response = await admin.post(f"/_admin/shipments/{booking.shipment_id}/advance")
    assert response.status_code == 409


async def test_held_shipment_moves_only_when_advanced(
    carrier: HttpCarrier, admin: httpx.AsyncClient, hooks: Receiver, hook_url: str
) -> None:
    held = await book(carrier, hook_url, "11111")
    moving = await book(carrier, hook_url)
    await eventually(lambda: hooks.types(moving.shipment_id) == NORMAL)
    # The normal parcel went through its whole journey meanwhile; the held one did not move.
    assert hooks.types(held.shipment_id) == []
    assert (await carrier.get(held.shipment_id)).status == "booked"

    for delivered, expected in enumerate(NORMAL, start=1):
        response = await admin.post(f"/_admin/shipments/{held.shipment_id}/advance")
        assert response.status_code == 200
        assert response.json()["type"] == expected
        await eventually(types_are(hooks, held.shipment_id, NORMAL[:delivered]))
    assert hooks.types(held.shipment_id) == NORMAL
    assert (await carrier.get(held.shipment_id)).status == "delivered"


async def test_cancel_before_pickup(
    carrier: HttpCarrier, admin: httpx.AsyncClient, hooks: Receiver, hook_url: str
) -> None:
    booking = await book(carrier, hook_url, "11111")
    cancelled = await carrier.cancel(
        idempotency_key=uuid.uuid4().hex, shipment_id=booking.shipment_id
    )
    assert cancelled.status == "cancelled"
    again = await carrier.cancel(idempotency_key=uuid.uuid4().hex, shipment_id=booking.shipment_id)
    assert again.status == "cancelled"
    response = await admin.post(f"/_admin/shipments/{booking.shipment_id}/advance")
    assert response.status_code == 409
    shipment = await carrier.get(booking.shipment_id)
    assert shipment.status == "cancelled"
    assert shipment.events == []


async def test_cancel_after_pickup_is_refused(
    carrier: HttpCarrier, admin: httpx.AsyncClient, hooks: Receiver, hook_url: str
) -> None:
    booking = await book(carrier, hook_url, "11111")
    (await admin.post(f"/_admin/shipments/{booking.shipment_id}/advance")).raise_for_status()
    await eventually(lambda: hooks.types(booking.shipment_id) == ["PICKED_UP"])
    with pytest.raises(CarrierRejected) as rejected:
        await carrier.cancel(idempotency_key=uuid.uuid4().hex, shipment_id=booking.shipment_id)
    assert rejected.value.status_code == 409
    assert (await carrier.get(booking.shipment_id)).status == "picked_up"


async def test_failed_delivery_is_retried_in_order(
    carrier: HttpCarrier, admin: httpx.AsyncClient, hooks: Receiver, hook_url: str
) -> None:
    reference = f"ord_{uuid.uuid4().hex[:8]}"
    hooks.fail(reference, times=2)
    booking = await book(carrier, hook_url, reference=reference)
    await eventually(lambda: len(hooks.types(booking.shipment_id)) == len(NORMAL))
    assert hooks.types(booking.shipment_id) == NORMAL

    events = hooks.events(booking.shipment_id)
    ids = {e["event_id"] for e in events}
    with hooks.lock:
        attempts = [event_id for event_id in hooks.attempts if event_id in ids]
    # The first event was refused twice and then accepted, before any later event was sent.
    first = events[0]["event_id"]
    assert attempts[:3] == [first, first, first]
    assert attempts[3:] == [e["event_id"] for e in events[1:]]

    async def all_delivered() -> bool:
        state = await admin_state(admin, booking.shipment_id)
        return all(e["delivered"] for e in state["events"])

    # The receiver has the last event a moment before the carrier has read its answer.
    await eventually(all_delivered)
    state = await admin_state(admin, booking.shipment_id)
    assert state["events"][0]["attempts"] == 3


def held_request(hook_url: str, reference: str) -> dict[str, Any]:
    """The arguments of a one-item booking the stand-in holds, under a fresh key."""
    return {
        "idempotency_key": uuid.uuid4().hex,
        "reference": reference,
        "ship_to": ship_to("11111"),
        "items": [{"sku": "SKU-1", "quantity": 1}],
        "webhook_url": hook_url,
    }


async def test_idempotent_booking(carrier: HttpCarrier, hook_url: str) -> None:
    request = held_request(hook_url, "ord_same")
    first = await carrier.book(**request)
    assert (await carrier.book(**request)).shipment_id == first.shipment_id
    with pytest.raises(CarrierRejected) as rejected:
        await carrier.book(**(request | {"reference": "ord_other"}))
    assert rejected.value.status_code == 422


async def test_outage_refuses_api_but_tracking_goes_on(
    carrier: HttpCarrier, admin: httpx.AsyncClient, hooks: Receiver, hook_url: str
) -> None:
    (await admin.post("/_admin/step", json={"seconds": 0.1})).raise_for_status()
    booking = await book(carrier, hook_url)
    (await admin.post("/_admin/outage", json={"down": True})).raise_for_status()
    with pytest.raises(CarrierUnavailable):
        await book(carrier, hook_url)
    with pytest.raises(CarrierUnavailable):
        await carrier.get(booking.shipment_id)
    await eventually(lambda: hooks.types(booking.shipment_id) == NORMAL)
    (await admin.post("/_admin/outage", json={"down": False})).raise_for_status()
    assert (await carrier.get(booking.shipment_id)).status == "delivered"


async def test_idempotency_key_is_required(admin: httpx.AsyncClient, hook_url: str) -> None:
    body = {
        "reference": "ord_1",
        "ship_to": ship_to(),
        "items": [{"sku": "SKU-1", "quantity": 1}],
        "webhook_url": hook_url,
    }
    response = await admin.post("/v1/shipments", json=body)
    assert response.status_code == 400


async def test_state_survives_recreating_the_app(
    tmp_path: Path, hooks: Receiver, hook_url: str
) -> None:
    state = tmp_path / "carrier.db"
    # A step of an hour keeps the normal parcel waiting until the second app takes over.
    with serve(create_app(state, step_seconds=3600, webhook_secret=SECRET)) as url:
        async with HttpCarrier(url) as carrier, httpx.AsyncClient(base_url=url) as admin:
            waiting = await book(carrier, hook_url)
            held = await book(carrier, hook_url, "11111")
            (await admin.post(f"/_admin/shipments/{held.shipment_id}/advance")).raise_for_status()
            await eventually(lambda: hooks.types(held.shipment_id) == ["PICKED_UP"])
    assert hooks.types(waiting.shipment_id) == []

    with serve(create_app(state, step_seconds=STEP, webhook_secret=SECRET)) as url:
        async with HttpCarrier(url) as carrier, httpx.AsyncClient(base_url=url) as admin:
            assert (await carrier.get(held.shipment_id)).status == "picked_up"
            await eventually(lambda: hooks.types(waiting.shipment_id) == NORMAL)
            (await admin.post(f"/_admin/shipments/{held.shipment_id}/advance")).raise_for_status()
            await eventually(lambda: hooks.types(held.shipment_id) == ["PICKED_UP", "IN_TRANSIT"])
            shipment = await carrier.get(held.shipment_id)
    assert [e.type for e in shipment.events] == ["PICKED_UP", "IN_TRANSIT"]


async def test_service_level_is_stored_and_returned(
    carrier: HttpCarrier, admin: httpx.AsyncClient, hook_url: str
) -> None:
    request = held_request(hook_url, "ord_fast")
    express = await carrier.book(**request, service="express")
    assert express.service == "express"
    assert (await carrier.get(express.shipment_id)).service == "express"
    assert (await admin_state(admin, express.shipment_id))["service"] == "express"
    # The same key asking for another service is another request.
    with pytest.raises(CarrierRejected) as rejected:
        await carrier.book(**request)
    assert rejected.value.status_code == 422
    standard = await book(carrier, hook_url, "11111")
    assert standard.service == "standard"
    body = {k: v for k, v in request.items() if k != "idempotency_key"}
    bad = await admin.post(
        "/v1/shipments",
        json=body | {"service": "overnight"},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert bad.status_code == 422


def test_a_state_file_from_before_service_levels_keeps_working(tmp_path: Path) -> None:
    state = tmp_path / "carrier.db"
    old_schema = _SCHEMA.replace("    service TEXT NOT NULL DEFAULT 'standard',\n", "")
    assert old_schema != _SCHEMA
    body = BookBody.model_validate(
        {
            "reference": "ord_old",
            "ship_to": ship_to("11111"),
            "items": [{"sku": "SKU-1", "quantity": 1}],
            "webhook_url": "http://127.0.0.1:9/hook",
        }
    )
    # A booking as the stand-in stored it before: its fingerprint had no service in it.
    payload = body.model_dump(mode="json", exclude={"service"})
    fingerprint = hashlib.sha256(
        json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    with sqlite3.connect(state) as conn:
        conn.executescript(old_schema)
        conn.execute(
            "INSERT INTO shipments (id, tracking_number, reference, idempotency_key, fingerprint,"
            " ship_to, items, webhook_url, scenario, status, created_at)"
            " VALUES ('shp_old', 'OF1', 'ord_old', 'key-old', ?, '{}', '[]', ?, 'hold',"
            " 'booked', 0)",
            (fingerprint, body.webhook_url),
        )
    conn.close()

    store = ShipmentStore(state)
    try:
        assert store.view("shp_old")["service"] == "standard"
        # A retry of that booking is recognised as the same request.
        assert store.book("key-old", body, time.time())["shipment_id"] == "shp_old"
        fast = body.model_copy(update={"reference": "ord_new", "service": "express"})
        assert store.book("key-new", fast, time.time())["service"] == "express"
    finally:
        store.close()
