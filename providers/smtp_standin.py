"""A local SMTP server that keeps every message it receives; HTTP view and fault injection."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sqlite3
import threading
import time
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from providers.sqlite_state import open_sqlite

log = logging.getLogger(__name__)

UNAVAILABLE = "421 4.3.0 service not available, try again later"
BANNER_HOSTNAME = "smtp-standin.orderflow"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT,
    mail_from TEXT NOT NULL,
    rcpt_to TEXT NOT NULL,
    subject TEXT NOT NULL,
    text TEXT NOT NULL,
    headers TEXT NOT NULL,
    raw BLOB NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_id ON messages(message_id);
"""
_COLUMNS = "seq, message_id, mail_from, rcpt_to, subject, text, headers, received_at"


class OutageBody(BaseModel):
    """Request of POST /_admin/outage."""

    down: bool


class RejectBody(BaseModel):
    """Request of POST /_admin/reject; an empty list accepts everyone again."""

    addresses: list[str]


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def bare_message_id(value: str) -> str:
    """A Message-ID without its angle brackets: "<a@b>" -> "a@b"."""
    return value.strip().removeprefix("<").removesuffix(">").strip()


def _text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):
        # An unknown charset or a broken transfer encoding: keep what can be read.
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    # An 8-bit body keeps the CRLF line ends of the wire; a base64 or QP one does not.
    return content.replace("\r\n", "\n")


def _summary(raw: bytes) -> dict[str, Any]:
    """The fields kept of a received message besides its envelope."""
    # Read unparsed, so a malformed Message-ID is kept as sent rather than cut short.
    message_id = BytesHeaderParser(policy=policy.compat32).parsebytes(raw).get("Message-ID")
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    headers: dict[str, str] = {}
    for name, value in parsed.items():
        headers[name] = str(value)
    return {
        "message_id": None if message_id is None else bare_message_id(str(message_id)),
        "subject": str(parsed.get("Subject", "")),
        "text": _text_of(parsed),
        "headers": headers,
    }


class MessageStore:
    """Received messages in SQLite, one row per recipient; safe to use from any thread."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        # The SMTP server and the HTTP app run on different threads and share one connection.
        self._lock = threading.Lock()

    def open(self) -> None:
        """Open the database now, so a bad state path fails at startup."""
        with self._lock:
            self._connect()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = open_sqlite(self._path, _SCHEMA)
        return self._conn

    def close(self) -> None:
        """Close the connection; an in-memory store is gone afterwards."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def reset(self) -> None:
        """Forget every message."""
        with self._lock:
            conn = self._connect()
            with conn:
                conn.execute("DELETE FROM messages")

    def keep(self, mail_from: str, rcpt_tos: Iterable[str], raw: bytes, now: float) -> None:
        """Store a received message once for each of its envelope recipients."""
        try:
            summary = _summary(raw)
        except Exception:
            # A message too broken to parse is still kept, so it can be looked at raw.
            log.exception("could not parse a message from %s", mail_from)
            summary = {"message_id": None, "subject": "", "text": "", "headers": {}}
        rows = [
            (
                summary["message_id"],
                mail_from,
                rcpt_to,
                summary["subject"],
                summary["text"],
                json.dumps(summary["headers"]),
                raw,
                now,
            )
            for rcpt_to in rcpt_tos
        ]
        with self._lock:
            conn = self._connect()
            with conn:
                conn.executemany(
                    "INSERT INTO messages (message_id, mail_from, rcpt_to, subject, text,"
                    " headers, raw, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )

    @staticmethod
    def _view(row: sqlite3.Row) -> dict[str, Any]:
        return {
            "message_id": row["message_id"],
            "from": row["mail_from"],
            "to": row["rcpt_to"],
            "subject": row["subject"],
            "text": row["text"],
            "headers": json.loads(row["headers"]),
            "received_at": _iso(row["received_at"]),
        }

    def messages(
        self,
        to: str | None = None,
        subject_contains: str | None = None,
        message_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Received messages, oldest first; filters ignore case, `message_id` brackets."""
        query = f"SELECT {_COLUMNS} FROM messages"
        clauses: list[str] = []
        params: list[Any] = []
        if to is not None:
            clauses.append("rcpt_to = ? COLLATE NOCASE")
            params.append(to.strip())
        if message_id is not None:
            clauses.append("message_id = ?")
            params.append(bare_message_id(message_id))
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        with self._lock:
            rows = self._connect().execute(query + " ORDER BY seq", params).fetchall()
        views = [self._view(row) for row in rows]
        if subject_contains is not None:
            # In Python, as SQLite only folds the case of ASCII letters.
            needle = subject_contains.casefold()
            views = [view for view in views if needle in view["subject"].casefold()]
        return views

    def message(self, message_id: str) -> dict[str, Any] | None:
        """The first message received with this Message-ID, its raw text and its copy count."""
        bare = bare_message_id(message_id)
        with self._lock:
            conn = self._connect()
            row = conn.execute(
                f"SELECT {_COLUMNS}, raw FROM messages WHERE message_id = ? ORDER BY seq LIMIT 1",
                (bare,),
            ).fetchone()
            copies = conn.execute(
                "SELECT COUNT(*) FROM messages WHERE message_id = ?", (bare,)
            ).fetchone()[0]
        if row is None:
            return None
        raw = row["raw"]
        return self._view(row) | {
            "copies": int(copies),
            "raw": bytes(raw).decode("utf-8", "replace"),
        }

    def count(self) -> int:
        """How many messages are kept."""
        with self._lock:
            return int(self._connect().execute("SELECT COUNT(*) FROM messages").fetchone()[0])


class _Handler:
    """The aiosmtpd hooks: apply the faults, then keep what is delivered."""

    def __init__(self, standin: SmtpStandin) -> None:
        self.standin = standin

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self.standin.down:
            return UNAVAILABLE
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.standin.down:
            return UNAVAILABLE
        if address.casefold() in self.standin.reject_recipients:
            return f"550 5.1.1 <{address}>: recipient rejected"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # Checked again here, so an outage that starts mid-transaction keeps nothing.
        if self.standin.down:
            return UNAVAILABLE
        raw = envelope.original_content or b""
        try:
            self.standin.store.keep(envelope.mail_from or "", envelope.rcpt_tos, raw, time.time())
        except Exception:
            log.exception("could not keep a message from %s", envelope.mail_from)
            return "451 4.3.0 local error, message not kept"
        return "250 OK: message kept"


class _Controller(Controller):
    """aiosmtpd's threaded controller, able to listen on a port picked by the OS (port 0)."""

    def _trigger_server(self) -> None:
        # The start-up probe connects to self.port, which must be the real one by then.
        assert isinstance(self.server, asyncio.Server)
        self.port = int(self.server.sockets[0].getsockname()[1])
        super()._trigger_server()


class SmtpStandin:
    """The SMTP server on its own thread, with its store and fault switches."""

    def __init__(self, state_path: Path | None, host: str = "127.0.0.1", port: int = 8025) -> None:
        self.store = MessageStore(state_path)
        self.host = host
        # Port 0 picks a free port at start(); `port` then tells which.
        self.port = port
        self._requested_port = port
        # Kept in memory, so a restart heals the server.
        self._down = False
        self._reject: frozenset[str] = frozenset()
        self._controller: _Controller | None = None

    @property
    def down(self) -> bool:
        """While True, every transaction is answered 421."""
        return self._down

    @down.setter
    def down(self, value: bool) -> None:
        self._down = value

    @property
    def reject_recipients(self) -> AbstractSet[str]:
        """Recipient addresses answered 550 (compared without case)."""
        return self._reject

    @reject_recipients.setter
    def reject_recipients(self, addresses: AbstractSet[str]) -> None:
        # Swapped whole, so the SMTP thread never sees a half-updated set.
        self._reject = frozenset(address.strip().casefold() for address in addresses)

    def start(self) -> None:
        """Open the store and listen for SMTP; returns once the server answers."""
        if self._controller is not None:
            raise RuntimeError("the SMTP stand-in is already running")
        self.store.open()
        controller = _Controller(
            _Handler(self),
            hostname=self.host,
            port=self._requested_port,
            server_hostname=BANNER_HOSTNAME,
        )
        controller.start()
        self._controller = controller
        self.port = controller.port

    def stop(self) -> None:
        """Stop listening and close the store; an in-memory store is gone afterwards."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        self.store.close()

    def reset(self) -> None:
        """Forget every message and heal every fault."""
        self.store.reset()
        self.down = False
        self.reject_recipients = frozenset()

    def __enter__(self) -> SmtpStandin:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def create_app(standin: SmtpStandin) -> FastAPI:
    """The HTTP view of `standin`: its messages and its fault switches."""
    app = FastAPI(title="SMTP stand-in")
    app.state.standin = standin

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = json.loads(json.dumps(exc.errors(), default=str))
        return JSONResponse(
            {"error": {"code": "invalid_request", "message": str(errors)[:500], "details": errors}},
            status_code=422,
        )

    @app.get("/messages")
    async def list_messages(
        to: str | None = None,
        subject_contains: str | None = None,
        message_id: str | None = None,
    ) -> list[dict[str, Any]]:
        return standin.store.messages(
            to=to, subject_contains=subject_contains, message_id=message_id
        )

    @app.get("/messages/{message_id}", response_model=None)
    async def get_message(message_id: str) -> dict[str, Any] | JSONResponse:
        found = standin.store.message(message_id)
        if found is None:
            return _error(404, "not_found", f"no message with Message-ID {message_id}")
        return found

    @app.post("/_admin/outage")
    async def set_outage(body: OutageBody) -> dict[str, Any]:
        standin.down = body.down
        return {"down": standin.down}

    @app.post("/_admin/reject")
    async def set_reject(body: RejectBody) -> dict[str, Any]:
        standin.reject_recipients = set(body.addresses)
        return {"addresses": sorted(standin.reject_recipients)}

    @app.get("/_admin/state")
    async def state() -> dict[str, Any]:
        return {
            "down": standin.down,
            "reject_recipients": sorted(standin.reject_recipients),
            "messages": standin.store.count(),
            "smtp": {"host": standin.host, "port": standin.port},
        }

    @app.post("/_admin/reset")
    async def reset() -> dict[str, Any]:
        standin.reset()
        return {"reset": True}

    return app


def serve(
    state_path: Path,
    smtp_host: str = "127.0.0.1",
    smtp_port: int = 8025,
    http_host: str = "127.0.0.1",
    http_port: int = 8103,
    log_level: str = "info",
) -> None:
    """Run the SMTP server and its HTTP view until SIGINT or SIGTERM."""
    standin = SmtpStandin(state_path, smtp_host, smtp_port)
    standin.start()
    log.info("SMTP stand-in listening on %s:%d", smtp_host, standin.port)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(standin),
            host=http_host,
            port=http_port,
            log_level=log_level.lower(),
            access_log=False,
        )
    )
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    # Off the main thread uvicorn leaves signals alone; on it, it would re-raise SIGTERM after
    # its shutdown and kill the process before the SMTP server is stopped.
    http_thread = threading.Thread(target=server.run, name="smtp-standin-http", daemon=True)
    http_thread.start()
    try:
        while not stopping.is_set() and http_thread.is_alive():
            stopping.wait(0.5)
    finally:
        server.should_exit = True
        http_thread.join(10)
        standin.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not stopping.is_set():
        raise RuntimeError(f"the HTTP server on {http_host}:{http_port} stopped on its own")
