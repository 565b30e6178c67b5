"""Bank transfers arriving at the payment gateway stand-in, and the signed webhooks telling the
merchant about them, sent from a durable outbox until the merchant acknowledges each one."""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from pydantic import BaseModel, Field

from providers.background_loop import BackgroundLoop
from providers.webhooks import post_signed

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS transfers (
    id TEXT PRIMARY KEY,
    reference TEXT NOT NULL,
    amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    received_at REAL NOT NULL,
    delivered_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS transfers_undelivered ON transfers(next_attempt_at)
    WHERE delivered_at IS NULL;
"""
EVENT_TYPE = "transfer.received"
DELIVERY_TIMEOUT_SECONDS = 5.0
IDLE_POLL_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0


class TransferBody(BaseModel):
    """Request of POST /_admin/transfers: money a customer sent, quoting `reference`."""

    reference: str = Field(min_length=1, max_length=200)
    amount: Decimal = Field(gt=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")


def receive(conn: sqlite3.Connection, body: TransferBody, now: float) -> dict[str, Any]:
    """Book a transfer and queue its webhook."""
    transfer_id = f"tr_{uuid.uuid4().hex[:20]}"
    with conn:
        conn.execute(
            "INSERT INTO transfers (id, reference, amount, currency, received_at,"
            " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?)",
            (transfer_id, body.reference, str(body.amount), body.currency, now, now),
        )
    return view(conn, transfer_id)


def view(conn: sqlite3.Connection, transfer_id: str) -> dict[str, Any]:
    row = conn.execute("SELECT * FROM transfers WHERE id = ?", (transfer_id,)).fetchone()
    return _view(row)


def dump(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT * FROM transfers ORDER BY received_at, id").fetchall()
    return [_view(r) for r in rows]


def _view(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "transfer_id": row["id"],
        "reference": row["reference"],
        "amount": row["amount"],
        "currency": row["currency"],
        "delivered": row["delivered_at"] is not None,
        "attempts": row["attempts"],
        "last_error": row["last_error"],
    }


def event(row: sqlite3.Row) -> dict[str, Any]:
    """The webhook body: the same event id at every attempt, so the merchant can tell."""
    return {
        "event_id": f"evt_{row['id']}",
        "type": EVENT_TYPE,
        "transfer_id": row["id"],
        "reference": row["reference"],
        "amount": row["amount"],
        "currency": row["currency"],
        "received_at": datetime.fromtimestamp(row["received_at"], UTC).isoformat(),
    }


class TransferNotifier(BackgroundLoop):
    """Posts each transfer's webhook until the merchant answers 2xx, backing off between tries.

    The outbox is the transfers table, so a restart of the gateway resumes where it stopped.
    """

    name = "transfer-notifier"
    idle_seconds = IDLE_POLL_SECONDS

    def __init__(
        self,
        conn: Callable[[], sqlite3.Connection],
        webhook_url: str,
        webhook_secret: str,
        paused: Callable[[], bool],
    ) -> None:
        super().__init__()
        self._conn = conn
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self._paused = paused
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=DELIVERY_TIMEOUT_SECONDS)
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _round(self) -> float:
        if self._paused() or not self.webhook_url or self._client is None:
            return IDLE_POLL_SECONDS
        return await self._deliver_due(self._client)

    async def _deliver_due(self, client: httpx.AsyncClient) -> float:
        conn = self._conn()
        now = time.time()
        rows = conn.execute(
            "SELECT * FROM transfers WHERE delivered_at IS NULL AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at LIMIT 50",
            (now,),
        ).fetchall()
        for row in rows:
            error = await post_signed(client, self.webhook_url, self.webhook_secret, event(row))
            attempts = row["attempts"] + 1
            with conn:
                if error is None:
                    conn.execute(
                        "UPDATE transfers SET delivered_at = ?, attempts = ?, last_error = NULL"
                        " WHERE id = ?",
                        (time.time(), attempts, row["id"]),
                    )
                else:
                    backoff = min(MAX_BACKOFF_SECONDS, 0.5 * 2**attempts)
                    conn.execute(
                        "UPDATE transfers SET attempts = ?, last_error = ?, next_attempt_at = ?"
                        " WHERE id = ?",
                        (attempts, error, time.time() + backoff, row["id"]),
                    )
        nxt = conn.execute(
            "SELECT MIN(next_attempt_at) FROM transfers WHERE delivered_at IS NULL"
        ).fetchone()[0]
        if nxt is None:
            return IDLE_POLL_SECONDS
        return max(0.0, min(IDLE_POLL_SECONDS, float(nxt) - time.time()))
