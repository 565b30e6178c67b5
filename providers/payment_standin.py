"""A local payment gateway: a real HTTP service with an SQLite ledger and fault injection."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from providers import payment_transfers as transfers
from providers.sqlite_state import SqliteState

_SCHEMA = """
CREATE TABLE IF NOT EXISTS authorizations (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    token TEXT NOT NULL,
    voided_at REAL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS operations (
    id TEXT PRIMARY KEY,
    authorization_id TEXT NOT NULL REFERENCES authorizations(id),
    kind TEXT NOT NULL CHECK (kind IN ('capture', 'void', 'refund')),
    amount TEXT,
    idempotency_key TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS operations_by_authorization ON operations(authorization_id);
CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE TABLE IF NOT EXISTS flaky_attempts (key TEXT PRIMARY KEY);
"""

_TABLES = ("operations", "authorizations", "idempotency", "flaky_attempts", "transfers")

Outcome = tuple[int, dict[str, Any]]


class AuthorizeBody(BaseModel):
    """Request of POST /v1/authorizations."""

    order_id: str = Field(min_length=1)
    amount: Decimal = Field(gt=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    token: str


class AmountBody(BaseModel):
    """Request of capture and refund."""

    amount: Decimal = Field(gt=0)


class OutageBody(BaseModel):
    """Request of POST /_admin/outage."""

    down: bool


class LatencyBody(BaseModel):
    """Request of POST /_admin/latency."""

    seconds: float = Field(ge=0)


@dataclass
class Faults:
    """Fault injection switches; kept in memory so a restart heals the gateway."""

    down: bool = False
    latency: float = 0.0


class FaultMiddleware:
    """Delays and, during an outage, refuses every /v1 request before it reaches a route."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            if self.faults.latency > 0:
                await asyncio.sleep(self.faults.latency)
            if self.faults.down:
                response = _error(503, "gateway_unavailable", "the gateway is down")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _failure(status: int, code: str, message: str) -> Outcome:
    return status, {"error": {"code": code, "message": message}}


def _pad(value: Decimal, like: Decimal) -> Decimal:
    """`value` with at least as many decimals as `like`, never rounded."""
    value_exp = value.as_tuple().exponent
    like_exp = like.as_tuple().exponent
    if isinstance(value_exp, int) and isinstance(like_exp, int) and value_exp > like_exp:
        return value.quantize(like)
    return value


class Ledger(SqliteState):
    """The gateway's state in SQLite; every method runs without awaiting, so it is atomic."""

    schema = _SCHEMA + transfers.SCHEMA

    def reset(self) -> None:
        """Forget every authorization, operation and idempotency key."""
        with self.conn:
            for table in _TABLES:
                self.conn.execute(f"DELETE FROM {table}")

    def idempotent(
        self, scope: str, key: str, payload: dict[str, Any], action: Callable[[], Outcome]
    ) -> Outcome:
        """Run `action` once per (scope, key); replays return the first outcome unchanged."""
        fingerprint = hashlib.sha256(
            json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        row = self.conn.execute(
            "SELECT fingerprint, status, body FROM idempotency WHERE scope = ? AND key = ?",
            (scope, key),
        ).fetchone()
        if row is not None:
            if row["fingerprint"] != fingerprint:
                return _failure(
                    422,
                    "idempotency_key_reused",
                    "this Idempotency-Key was already used with a different request",
                )
            return int(row["status"]), json.loads(row["body"])
        with self.conn:
            status, body = action()
            # A 5xx means "nothing happened, try again", so it must not be replayed.
            if status < 500:
                self.conn.execute(
                    "INSERT INTO idempotency VALUES (?, ?, ?, ?, ?, ?)",
                    (scope, key, fingerprint, status, json.dumps(body), time.time()),
                )
        return status, body

    def _auth_row(self, authorization_id: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(
            "SELECT * FROM authorizations WHERE id = ?", (authorization_id,)
        ).fetchone()
        return row

    def _operations(self, authorization_id: str) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT * FROM operations WHERE authorization_id = ? ORDER BY created_at, rowid",
            (authorization_id,),
        ).fetchall()

    def _totals(self, authorization_id: str) -> tuple[Decimal, Decimal]:
        captured = refunded = Decimal("0")
        for op in self._operations(authorization_id):
            if op["kind"] == "capture":
                captured += Decimal(op["amount"])
            elif op["kind"] == "refund":
                refunded += Decimal(op["amount"])
        return captured, refunded

    def view(self, authorization_id: str) -> dict[str, Any] | None:
        """The public JSON of an authorization, or None if unknown."""
        row = self._auth_row(authorization_id)
        if row is None:
            return None
        amount = Decimal(row["amount"])
        captured, refunded = self._totals(authorization_id)
        voided = row["voided_at"] is not None
        if voided and captured == 0:
            status = "voided"
        elif captured == 0:
            status = "authorized"
        elif refunded == 0:
            status = "captured"
        elif refunded < captured:
            status = "partially_refunded"
        else:
            status = "refunded"
        return {
            "id": row["id"],
            "order_id": row["order_id"],
            "amount": str(amount),
            "currency": row["currency"],
            "status": status,
            "captured_amount": str(_pad(captured, amount)),
            "refunded_amount": str(_pad(refunded, amount)),
            # After partial captures a void gives the rest of the hold back to the card.
            "released_amount": str(_pad(amount - captured if voided else Decimal("0"), amount)),
        }

    def authorize(self, key: str, body: AuthorizeBody) -> Outcome:
        """Authorize, decline, or fail once (tok_flaky) depending on the token."""
        if body.token == "tok_decline":
            return _failure(402, "card_declined", "the card was declined")
        if body.token == "tok_flaky":
            seen = self.conn.execute(
                "SELECT 1 FROM flaky_attempts WHERE key = ?", (key,)
            ).fetchone()
            if seen is None:
                self.conn.execute("INSERT INTO flaky_attempts VALUES (?)", (key,))
                return _failure(503, "gateway_error", "temporary gateway error, try again")
        elif body.token != "tok_ok":
            return _failure(402, "invalid_token", f"unknown payment token {body.token!r}")
        authorization_id = f"auth_{uuid.uuid4().hex[:24]}"
        self.conn.execute(
            "INSERT INTO authorizations VALUES (?, ?, ?, ?, ?, NULL, ?)",
            (
                authorization_id,
                body.order_id,
                str(body.amount),
                body.currency,
                body.token,
                time.time(),
            ),
        )
        view = self.view(authorization_id)
        assert view is not None
        return 201, view

    def capture(self, key: str, authorization_id: str, amount: Decimal) -> Outcome:
        """Capture up to what is still authorized."""
        row = self._auth_row(authorization_id)
        if row is None:
            return _failure(404, "not_found", f"no authorization {authorization_id}")
        if row["voided_at"] is not None:
            return _failure(409, "authorization_voided", "the authorization was voided")
        captured, _ = self._totals(authorization_id)
        remaining = Decimal(row["amount"]) - captured
        if amount > remaining:
            return _failure(
                409,
                "amount_exceeds_authorization",
                f"capture of {amount} exceeds the {remaining} still authorized",
            )
        capture_id = f"cap_{uuid.uuid4().hex[:24]}"
        self._record(capture_id, authorization_id, "capture", amount, key)
        return 201, {
            "id": capture_id,
            "authorization_id": authorization_id,
            "amount": str(amount),
            "status": "succeeded",
        }

    def void(self, key: str, authorization_id: str) -> Outcome:
        """Release what is still authorized (all of it, or the rest after partial captures);
        voiding twice is harmless."""
        row = self._auth_row(authorization_id)
        if row is None:
            return _failure(404, "not_found", f"no authorization {authorization_id}")
        if row["voided_at"] is None:
            captured, _ = self._totals(authorization_id)
            if captured >= Decimal(row["amount"]):
                return _failure(
                    409, "already_captured", "a fully captured authorization cannot be voided"
                )
            self.conn.execute(
                "UPDATE authorizations SET voided_at = ? WHERE id = ?",
                (time.time(), authorization_id),
            )
            self._record(f"void_{uuid.uuid4().hex[:24]}", authorization_id, "void", None, key)
        view = self.view(authorization_id)
        assert view is not None
        return 200, view

    def refund(self, key: str, authorization_id: str, amount: Decimal) -> Outcome:
        """Refund up to what was captured and not yet refunded."""
        if self._auth_row(authorization_id) is None:
            return _failure(404, "not_found", f"no authorization {authorization_id}")
        captured, refunded = self._totals(authorization_id)
        refundable = captured - refunded
        if amount > refundable:
            return _failure(
                409,
                "amount_exceeds_captured",
                f"refund of {amount} exceeds the {refundable} captured and not refunded",
            )
        refund_id = f"re_{uuid.uuid4().hex[:24]}"
        self._record(refund_id, authorization_id, "refund", amount, key)
        return 201, {
            "id": refund_id,
            "authorization_id": authorization_id,
            "amount": str(amount),
            "status": "succeeded",
        }

    def _record(
        self, op_id: str, authorization_id: str, kind: str, amount: Decimal | None, key: str
    ) -> None:
        self.conn.execute(
            "INSERT INTO operations VALUES (?, ?, ?, ?, ?, ?)",
            (
                op_id,
                authorization_id,
                kind,
                None if amount is None else str(amount),
                key,
                time.time(),
            ),
        )

    def dump(self) -> list[dict[str, Any]]:
        """Every authorization with its captures, voids and refunds."""
        result = []
        ids = self.conn.execute("SELECT id FROM authorizations ORDER BY created_at, rowid")
        for (authorization_id,) in ids.fetchall():
            entry = self.view(authorization_id)
            assert entry is not None
            ops: dict[str, list[dict[str, Any]]] = {"capture": [], "void": [], "refund": []}
            for op in self._operations(authorization_id):
                ops[op["kind"]].append(
                    {
                        "id": op["id"],
                        "amount": op["amount"],
                        "idempotency_key": op["idempotency_key"],
                        "created_at": op["created_at"],
                    }
                )
            entry.update(captures=ops["capture"], voids=ops["void"], refunds=ops["refund"])
            result.append(entry)
        return result


def _respond(outcome: Outcome) -> JSONResponse:
    status, body = outcome
    return JSONResponse(body, status_code=status)


def _missing_key() -> JSONResponse:
    return _error(400, "idempotency_key_required", "the Idempotency-Key header is required")


def create_app(
    state_path: Path | None = None, webhook_url: str = "", webhook_secret: str = ""
) -> FastAPI:
    """The payment gateway stand-in; its ledger lives in `state_path` (in memory if None).

    Transfers it receives are announced to `webhook_url`, signed with `webhook_secret`.
    """
    ledger = Ledger(state_path)
    faults = Faults()
    # An outage silences the gateway's webhooks too; they go out once it is back.
    notifier = transfers.TransferNotifier(
        lambda: ledger.conn, webhook_url, webhook_secret, paused=lambda: faults.down
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        ledger.open()
        await notifier.start()
        try:
            yield
        finally:
            await notifier.stop()
            ledger.close()

    app = FastAPI(title="Payment gateway stand-in", lifespan=lifespan)
    app.add_middleware(FaultMiddleware, faults=faults)
    app.state.ledger = ledger
    app.state.faults = faults

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = json.loads(json.dumps(exc.errors(), default=str))
        return JSONResponse(
            {"error": {"code": "invalid_request", "message": str(errors)[:500], "details": errors}},
            status_code=422,
        )

    def _once(
        request: Request,
        key: str | None,
        payload: dict[str, Any],
        action: Callable[[str], Outcome],
    ) -> JSONResponse:
        """Every mutating call needs a key; the same key replays the first outcome."""
        if not key:
            return _missing_key()
        return _respond(ledger.idempotent(request.url.path, key, payload, lambda: action(key)))

    @app.post("/v1/authorizations")
    async def authorize(
        body: AuthorizeBody,
        request: Request,
        idempotency_key: str | None = Header(default=None),
    ) -> JSONResponse:
        return _once(
            request,
            idempotency_key,
            body.model_dump(mode="json"),
            lambda key: ledger.authorize(key, body),
        )

    @app.post("/v1/authorizations/{authorization_id}/capture")
    async def capture(
        authorization_id: str,
        body: AmountBody,
        request: Request,
        idempotency_key: str | None = Header(default=None),
    ) -> JSONResponse:
        return _once(
            request,
            idempotency_key,
            body.model_dump(mode="json"),
            lambda key: ledger.capture(key, authorization_id, body.amount),
        )

    @app.post("/v1/authorizations/{authorization_id}/void")
    async def void(
        authorization_id: str,
        request: Request,
        idempotency_key: str | None = Header(default=None),
    ) -> JSONResponse:
        return _once(request, idempotency_key, {}, lambda key: ledger.void(key, authorization_id))

    @app.post("/v1/authorizations/{authorization_id}/refunds")
    async def refund(
        authorization_id: str,
        body: AmountBody,
        request: Request,
        idempotency_key: str | None = Header(default=None),
    ) -> JSONResponse:
        return _once(
            request,
            idempotency_key,
            body.model_dump(mode="json"),
            lambda key: ledger.refund(key, authorization_id, body.amount),
        )

    @app.get("/v1/authorizations/{authorization_id}")
    async def get_authorization(authorization_id: str) -> JSONResponse:
        view = ledger.view(authorization_id)
        if view is None:
            return _error(404, "not_found", f"no authorization {authorization_id}")
        return JSONResponse(view)

    @app.post("/_admin/outage")
    async def outage(body: OutageBody) -> dict[str, Any]:
        faults.down = body.down
        notifier.poke()
        return {"down": faults.down}

    @app.post("/_admin/latency")
    async def latency(body: LatencyBody) -> dict[str, Any]:
        faults.latency = body.seconds
        return {"seconds": faults.latency}

    @app.post("/_admin/transfers", status_code=201)
    async def receive_transfer(body: transfers.TransferBody) -> dict[str, Any]:
        """Money a customer sent by bank transfer has arrived, quoting `reference`."""
        booked = transfers.receive(ledger.conn, body, time.time())
        notifier.poke()
        return booked

    @app.get("/_admin/transfers")
    async def list_transfers() -> dict[str, Any]:
        return {"transfers": transfers.dump(ledger.conn)}

    @app.get("/_admin/ledger")
    async def dump_ledger() -> dict[str, Any]:
        return {"authorizations": ledger.dump()}

    @app.post("/_admin/reset")
    async def reset() -> dict[str, Any]:
        ledger.reset()
        faults.down = False
        faults.latency = 0.0
        return {"reset": True}

    return app
