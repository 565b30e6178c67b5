"""A local carrier: books parcels and posts signed tracking webhooks through a durable outbox."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from providers.background_loop import BackgroundLoop
from providers.sqlite_state import SqliteState
from providers.webhooks import post_signed

log = logging.getLogger(__name__)

NORMAL = ("PICKED_UP", "IN_TRANSIT", "OUT_FOR_DELIVERY", "DELIVERED")
SEQUENCES: dict[str, tuple[str, ...]] = {
    "normal": NORMAL,
    "failed_attempt": (
        "PICKED_UP",
        "IN_TRANSIT",
        "OUT_FOR_DELIVERY",
        "DELIVERY_FAILED",
        "OUT_FOR_DELIVERY",
        "DELIVERED",
    ),
    "lost": ("PICKED_UP", "IN_TRANSIT", "LOST"),
    "damaged": ("PICKED_UP", "IN_TRANSIT", "DAMAGED"),
    # The carrier cannot find the address, then delivers once it has been sorted out.
    "address_problem": (
        "PICKED_UP",
        "IN_TRANSIT",
        "ADDRESS_PROBLEM",
        "OUT_FOR_DELIVERY",
        "DELIVERED",
    ),
    "hold": NORMAL,
}
# Magic postal codes that pick a scenario; any other code gets the normal journey.
SCENARIO_BY_POSTAL_CODE = {
    "99999": "failed_attempt",
    "00000": "lost",
    "22222": "damaged",
    "33333": "address_problem",
    "11111": "hold",
}
DETAILS = {
    "PICKED_UP": "Parcel picked up from the sender",
    "IN_TRANSIT": "Parcel in transit to the delivery depot",
    "OUT_FOR_DELIVERY": "Parcel out for delivery",
    "DELIVERY_FAILED": "Recipient not reached; a new attempt is scheduled",
    "DELIVERED": "Parcel delivered to the recipient",
    "LOST": "Parcel reported lost in the network",
    "DAMAGED": "Parcel damaged in transit",
    "ADDRESS_PROBLEM": "Address could not be found; the depot holds the parcel",
}

RETRY_BASE_SECONDS = 0.1
RETRY_CAP_SECONDS = 3.0
DELIVERY_TIMEOUT_SECONDS = 5.0
MAX_CONCURRENT_DELIVERIES = 64
# Upper bound of the tracker's sleep, so a missed wake-up costs at most this long.
IDLE_POLL_SECONDS = 1.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS shipments (
    id TEXT PRIMARY KEY,
    tracking_number TEXT NOT NULL UNIQUE,
    reference TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,
    ship_to TEXT NOT NULL,
    items TEXT NOT NULL,
    webhook_url TEXT NOT NULL,
    service TEXT NOT NULL DEFAULT 'standard',
    scenario TEXT NOT NULL,
    status TEXT NOT NULL,
    next_step INTEGER NOT NULL DEFAULT 0,
    -- Start of the wait for the next event; NULL while an event is undelivered, or when the
    -- shipment is held, finished or cancelled.
    waiting_since REAL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS shipments_waiting ON shipments(waiting_since)
    WHERE waiting_since IS NOT NULL;
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY,
    shipment_id TEXT NOT NULL REFERENCES shipments(id),
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    detail TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    delivered_at REAL,
    UNIQUE (shipment_id, seq)
);
CREATE INDEX IF NOT EXISTS events_undelivered ON events(shipment_id, seq)
    WHERE delivered_at IS NULL;
"""


class ShipTo(BaseModel):
    """Where the parcel goes."""

    name: str = Field(min_length=1)
    line1: str = Field(min_length=1)
    line2: str | None = None
    city: str = Field(min_length=1)
    postal_code: str = Field(min_length=1)
    country: str = Field(min_length=2)
    phone: str | None = None


class Item(BaseModel):
    """One line of the parcel."""

    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0)


class BookBody(BaseModel):
    """Request of POST /v1/shipments."""

    reference: str = Field(min_length=1)
    ship_to: ShipTo
    items: list[Item] = Field(min_length=1)
    webhook_url: str = Field(pattern=r"^https?://")
    service: Literal["standard", "express"] = "standard"


class OutageBody(BaseModel):
    """Request of POST /_admin/outage."""

    down: bool


class StepBody(BaseModel):
    """Request of POST /_admin/step."""

    seconds: float = Field(ge=0)


class StandinError(Exception):
    """An error answer of the stand-in, rendered as {"error": {code, message}}."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


class OutageMiddleware:
    """Refuses every /v1 request during an outage; tracking of booked parcels goes on."""

    def __init__(self, app: ASGIApp, outage: dict[str, bool]) -> None:
        self.app = app
        self.outage = outage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/") and self.outage["down"]:
            await _error(503, "carrier_unavailable", "the carrier is down")(scope, receive, send)
            return
        await self.app(scope, receive, send)


class ShipmentStore(SqliteState):
    """Shipments and their webhook outbox in SQLite; methods never await, so each is atomic."""

    schema = _SCHEMA

    def upgrade(self, conn: sqlite3.Connection) -> None:
        """Give a state file from before service levels its column (those parcels: standard)."""
        columns = {row["name"] for row in conn.execute("PRAGMA table_info(shipments)")}
        if "service" not in columns:
            conn.execute(
                "ALTER TABLE shipments ADD COLUMN service TEXT NOT NULL DEFAULT 'standard'"
            )

    def reset(self) -> None:
        """Forget every shipment and pending delivery."""
        with self.conn:
            self.conn.execute("DELETE FROM events")
            self.conn.execute("DELETE FROM shipments")

    def _row(self, shipment_id: str) -> sqlite3.Row:
        row: sqlite3.Row | None = self.conn.execute(
            "SELECT * FROM shipments WHERE id = ?", (shipment_id,)
        ).fetchone()
        if row is None:
            raise StandinError(404, "not_found", f"no shipment {shipment_id}")
        return row

    @staticmethod
    def _booking(row: sqlite3.Row) -> dict[str, Any]:
        return {
            "shipment_id": row["id"],
            "tracking_number": row["tracking_number"],
            "status": row["status"],
            "reference": row["reference"],
            "service": row["service"],
        }

    def book(self, key: str, body: BookBody, now: float) -> dict[str, Any]:
        """Book a parcel once per idempotency key; a replay returns the same shipment."""
        payload = body.model_dump(mode="json")
        # A standard booking fingerprints as it did before service levels existed, so a
        # retry of a booking made then still matches.
        fingerprinted = {k: v for k, v in payload.items() if (k, v) != ("service", "standard")}
        fingerprint = hashlib.sha256(
            json.dumps(fingerprinted, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        existing = self.conn.execute(
            "SELECT * FROM shipments WHERE idempotency_key = ?", (key,)
        ).fetchone()
        if existing is not None:
            if existing["fingerprint"] != fingerprint:
                raise StandinError(
                    422,
                    "idempotency_key_reused",
                    "this Idempotency-Key was already used with a different request",
                )
            return self._booking(existing)
        scenario = SCENARIO_BY_POSTAL_CODE.get(body.ship_to.postal_code.strip(), "normal")
        shipment_id = f"shp_{uuid.uuid4().hex[:24]}"
        with self.conn:
            self.conn.execute(
                "INSERT INTO shipments (id, tracking_number, reference, idempotency_key,"
                " fingerprint, ship_to, items, webhook_url, service, scenario, status,"
                " waiting_since, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'booked', ?, ?)",
                (
                    shipment_id,
                    f"OF{uuid.uuid4().int % 10**12:012d}",
                    body.reference,
                    key,
                    fingerprint,
                    json.dumps(payload["ship_to"]),
                    json.dumps(payload["items"]),
                    body.webhook_url,
                    body.service,
                    scenario,
                    None if scenario == "hold" else now,
                    now,
                ),
            )
        return self._booking(self._row(shipment_id))

    def cancel(self, shipment_id: str) -> dict[str, Any]:
        """Cancel a parcel not picked up yet; cancelling twice is harmless."""
        row = self._row(shipment_id)
        if row["status"] != "cancelled":
            if row["next_step"] > 0:
                raise StandinError(
                    409, "already_picked_up", f"the parcel is {row['status']}; too late to cancel"
                )
            with self.conn:
                self.conn.execute(
                    "UPDATE shipments SET status = 'cancelled', waiting_since = NULL WHERE id = ?",
                    (shipment_id,),
                )
        return self._booking(self._row(shipment_id))

    def emit_next(self, shipment_id: str, now: float) -> dict[str, Any]:
        """Put the shipment's next tracking event in the outbox."""
        row = self._row(shipment_id)
        sequence = SEQUENCES[row["scenario"]]
        if row["status"] == "cancelled":
            raise StandinError(409, "cancelled", "the shipment was cancelled")
        step = int(row["next_step"])
        if step >= len(sequence):
            raise StandinError(409, "finished", f"the shipment already ended as {row['status']}")
        event = {
            "event_id": f"evt_{uuid.uuid4().hex}",
            "type": sequence[step],
            "occurred_at": _iso(now),
            "detail": DETAILS[sequence[step]],
        }
        with self.conn:
            self.conn.execute(
                "INSERT INTO events (event_id, shipment_id, seq, type, occurred_at, detail,"
                " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    event["event_id"],
                    shipment_id,
                    step,
                    event["type"],
                    event["occurred_at"],
                    event["detail"],
                    now,
                ),
            )
            self.conn.execute(
                "UPDATE shipments SET status = ?, next_step = ?, waiting_since = NULL WHERE id = ?",
                (event["type"].lower(), step + 1, shipment_id),
            )
        return event

    def due_for_next_event(self, started_before: float) -> list[str]:
        """Shipments whose wait for the next event started before `started_before`."""
        rows = self.conn.execute(
            "SELECT id FROM shipments WHERE waiting_since IS NOT NULL AND waiting_since <= ?"
            " ORDER BY waiting_since",
            (started_before,),
        ).fetchall()
        return [row["id"] for row in rows]

    def stop_waiting(self, shipment_id: str) -> None:
        """Schedule no further event for the shipment."""
        with self.conn:
            self.conn.execute(
                "UPDATE shipments SET waiting_since = NULL WHERE id = ?", (shipment_id,)
            )

    def earliest_wait_start(self) -> float | None:
        """When the longest-waiting shipment started waiting for its next event."""
        row = self.conn.execute("SELECT MIN(waiting_since) FROM shipments").fetchone()
        return None if row[0] is None else float(row[0])

    def delivery_heads(self) -> list[sqlite3.Row]:
        """The oldest undelivered event of every shipment, with what is needed to post it."""
        return self.conn.execute(
            "SELECT e.*, s.tracking_number, s.reference, s.webhook_url FROM events e"
            " JOIN (SELECT shipment_id, MIN(seq) AS seq FROM events WHERE delivered_at IS NULL"
            "       GROUP BY shipment_id) h ON e.shipment_id = h.shipment_id AND e.seq = h.seq"
            " JOIN shipments s ON s.id = e.shipment_id"
        ).fetchall()

    def mark_delivered(self, event_id: str, now: float) -> None:
        """Record a delivery and, once the outbox of the shipment is empty, start the next wait."""
        row = self.conn.execute(
            "SELECT shipment_id FROM events WHERE event_id = ? AND delivered_at IS NULL",
            (event_id,),
        ).fetchone()
        if row is None:
            # Forgotten by a reset while the delivery was under way.
            return
        with self.conn:
            self.conn.execute(
                "UPDATE events SET delivered_at = ?, attempts = attempts + 1, last_error = NULL"
                " WHERE event_id = ?",
                (now, event_id),
            )
            shipment = self._row(row["shipment_id"])
            pending = self.conn.execute(
                "SELECT 1 FROM events WHERE shipment_id = ? AND delivered_at IS NULL LIMIT 1",
                (shipment["id"],),
            ).fetchone()
            more = shipment["next_step"] < len(SEQUENCES[shipment["scenario"]])
            if pending is None and more and shipment["scenario"] != "hold":
                self.conn.execute(
                    "UPDATE shipments SET waiting_since = ? WHERE id = ?", (now, shipment["id"])
                )

    def mark_failed(self, event_id: str, now: float, error: str) -> None:
        """Record a failed delivery and when to try again."""
        with self.conn:
            row = self.conn.execute(
                "SELECT attempts FROM events WHERE event_id = ?", (event_id,)
            ).fetchone()
            if row is None:
                return
            attempts = int(row["attempts"]) + 1
            backoff = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempts - 1))
            self.conn.execute(
                "UPDATE events SET attempts = ?, next_attempt_at = ?, last_error = ?"
                " WHERE event_id = ?",
                (attempts, now + backoff, error[:500], event_id),
            )

    def view(self, shipment_id: str, *, admin: bool = False) -> dict[str, Any]:
        """The shipment with its events; `admin` adds the scenario and delivery status."""
        return self._view(self._row(shipment_id), admin=admin)

    def _view(self, row: sqlite3.Row, *, admin: bool) -> dict[str, Any]:
        events = []
        for event in self.conn.execute(
            "SELECT * FROM events WHERE shipment_id = ? ORDER BY seq", (row["id"],)
        ).fetchall():
            item: dict[str, Any] = {
                "event_id": event["event_id"],
                "type": event["type"],
                "occurred_at": event["occurred_at"],
                "detail": event["detail"],
            }
            if admin:
                item.update(
                    delivered=event["delivered_at"] is not None,
                    delivered_at=event["delivered_at"],
                    attempts=event["attempts"],
                    next_attempt_at=event["next_attempt_at"],
                    last_error=event["last_error"],
                )
            events.append(item)
        result = self._booking(row) | {
            "ship_to": json.loads(row["ship_to"]),
            "items": json.loads(row["items"]),
            "webhook_url": row["webhook_url"],
            "created_at": _iso(row["created_at"]),
            "events": events,
        }
        if admin:
            result.update(scenario=row["scenario"], waiting_since=row["waiting_since"])
        return result

    def dump(self) -> list[dict[str, Any]]:
        """Every shipment with its events and their delivery status."""
        rows = self.conn.execute("SELECT * FROM shipments ORDER BY created_at, rowid").fetchall()
        return [self._view(row, admin=True) for row in rows]


class Tracker(BackgroundLoop):
    """Moves parcels along their journey and drains the webhook outbox, in the background."""

    name = "carrier-tracker"
    idle_seconds = IDLE_POLL_SECONDS

    def __init__(self, store: ShipmentStore, step_seconds: float, webhook_secret: str) -> None:
        super().__init__()
        self.store = store
        self.step_seconds = step_seconds
        self.webhook_secret = webhook_secret
        self._client: httpx.AsyncClient | None = None
        self._in_flight: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> None:
        """Start the background loop on the running event loop."""
        self._client = httpx.AsyncClient(timeout=DELIVERY_TIMEOUT_SECONDS)
        await super().start()

    async def stop(self) -> None:
        """Stop the loop; deliveries cut short stay in the outbox for the next start."""
        await super().stop()
        abandoned = list(self._in_flight.values())
        self.drop_in_flight()
        # Waited for, so no delivery touches the store after it is closed.
        await asyncio.gather(*abandoned, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def drop_in_flight(self) -> None:
        """Abandon deliveries under way; their events stay undelivered in the outbox."""
        for task in self._in_flight.values():
            task.cancel()
        self._in_flight.clear()

    async def _round(self) -> float:
        return self._tick(time.time())

    def _tick(self, now: float) -> float:
        """Emit due events and start due deliveries; return how long to sleep."""
        for shipment_id in self.store.due_for_next_event(now - self.step_seconds):
            try:
                self.store.emit_next(shipment_id, now)
            except StandinError as exc:
                # Without clearing the wait, the loop would retry this shipment without pause.
                log.warning("no next event for shipment %s: %s", shipment_id, exc.message)
                self.store.stop_waiting(shipment_id)
        wake_at = math.inf
        for head in self.store.delivery_heads():
            if head["shipment_id"] in self._in_flight:
                continue
            if head["next_attempt_at"] > now:
                wake_at = min(wake_at, head["next_attempt_at"])
            elif len(self._in_flight) < MAX_CONCURRENT_DELIVERIES:
                self._in_flight[head["shipment_id"]] = asyncio.create_task(self._deliver(head))
            # At capacity, a finishing delivery pokes the loop, so no timer is needed.
        waiting = self.store.earliest_wait_start()
        if waiting is not None:
            wake_at = min(wake_at, waiting + self.step_seconds)
        return max(0.0, min(IDLE_POLL_SECONDS, wake_at - time.time()))

    async def _deliver(self, head: sqlite3.Row) -> None:
        shipment_id = head["shipment_id"]
        try:
            assert self._client is not None
            error = await post_signed(
                self._client,
                head["webhook_url"],
                self.webhook_secret,
                {
                    "event_id": head["event_id"],
                    "shipment_id": shipment_id,
                    "tracking_number": head["tracking_number"],
                    "reference": head["reference"],
                    "type": head["type"],
                    "occurred_at": head["occurred_at"],
                    "detail": head["detail"],
                },
            )
            if error is None:
                self.store.mark_delivered(head["event_id"], time.time())
            else:
                self.store.mark_failed(head["event_id"], time.time(), error)
        except Exception:
            # Nobody awaits this task, so a failure is logged here or lost.
            log.exception("delivery of event %s failed", head["event_id"])
        finally:
            if self._in_flight.get(shipment_id) is asyncio.current_task():
                del self._in_flight[shipment_id]
            self.poke()


def create_app(
    state_path: Path | None = None, step_seconds: float = 3.0, webhook_secret: str = ""
) -> FastAPI:
    """The carrier stand-in; shipments and the outbox live in `state_path` (memory if None)."""
    store = ShipmentStore(state_path)
    tracker = Tracker(store, step_seconds, webhook_secret)
    outage = {"down": False}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        store.open()
        await tracker.start()
        try:
            yield
        finally:
            await tracker.stop()
            store.close()

    app = FastAPI(title="Carrier stand-in", lifespan=lifespan)
    app.add_middleware(OutageMiddleware, outage=outage)
    app.state.store = store
    app.state.tracker = tracker

    @app.exception_handler(StandinError)
    async def standin_error(_: Request, exc: StandinError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = json.loads(json.dumps(exc.errors(), default=str))
        return JSONResponse(
            {"error": {"code": "invalid_request", "message": str(errors)[:500], "details": errors}},
            status_code=422,
        )

    @app.post("/v1/shipments", status_code=201)
    async def book(
        body: BookBody, idempotency_key: str | None = Header(default=None)
    ) -> dict[str, Any]:
        if not idempotency_key:
            raise StandinError(
                400, "idempotency_key_required", "the Idempotency-Key header is required"
            )
        booking = store.book(idempotency_key, body, time.time())
        tracker.poke()
        return booking

    @app.post("/v1/shipments/{shipment_id}/cancel")
    async def cancel(shipment_id: str) -> dict[str, Any]:
        # Cancelling is idempotent by nature, so an Idempotency-Key is accepted but not needed.
        return store.cancel(shipment_id)

    @app.get("/v1/shipments/{shipment_id}")
    async def get_shipment(shipment_id: str) -> dict[str, Any]:
        return store.view(shipment_id)

    @app.post("/_admin/outage")
    async def set_outage(body: OutageBody) -> dict[str, Any]:
        outage["down"] = body.down
        return {"down": body.down}

    @app.post("/_admin/shipments/{shipment_id}/advance")
    async def advance(shipment_id: str) -> dict[str, Any]:
        event = store.emit_next(shipment_id, time.time())
        tracker.poke()
        return event

    @app.post("/_admin/step")
    async def set_step(body: StepBody) -> dict[str, Any]:
        tracker.step_seconds = body.seconds
        tracker.poke()
        return {"seconds": body.seconds}

    @app.get("/_admin/state")
    async def state() -> dict[str, Any]:
        return {
            "down": outage["down"],
            "step_seconds": tracker.step_seconds,
            "shipments": store.dump(),
        }

    @app.post("/_admin/reset")
    async def reset() -> dict[str, Any]:
        tracker.drop_in_flight()
        store.reset()
        outage["down"] = False
        tracker.step_seconds = step_seconds
        tracker.poke()
        return {"reset": True}

    return app
