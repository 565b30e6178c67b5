"""Idempotency-Key for every route that changes something: a retry gets the first answer.

A pure ASGI middleware, so that every route is covered without a line of its own and the whole
answer, status and body, is seen and kept before the client gets it. Per caller and key:

- the first request claims the key, runs, and its answer is stored before it is sent;
- the same request again gets that answer with `Idempotent-Replayed: true`;
- another request under the key is `422 idempotency_key_reused`;
- the same request while the first still runs is `409 request_in_progress`, until the first
  one's lease runs out (its API process died): then the retry runs it again. Where a request
  runs a workflow update, its update id is `request_key()`, so the Temporal server answers such
  a re-run with the outcome of the update already made.

Answers that promise nothing (5xx, 401, 403, a malformed body) are not kept: a retry runs again.
Placing an order (`POST /orders`, reorder) keeps its keys with the order's intake instead
(api/intake.py): a repeat answers the order as it stands, and concurrent repeats all get it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from contextvars import ContextVar
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import sealing
from api.auth import get_caller, presented_key
from api.errors import ERROR_MEANINGS, ApiError, error_body
from api.openapi import REF
from api.request_keys import (
    CHANGING,
    HEADER,
    KEY_FORMAT,
    MAX_KEY_LENGTH,
    kept,
    make_request_key,
    places_order,
    request_hash,
    takes_keys,
)
from models import idempotency as repo
from orderflow.settings import Settings

log = logging.getLogger(__name__)

PURGE_EVERY_SECONDS = 60.0
# The database failing a write that only keeps or frees a key: the answer still goes out.
UNREACHABLE = (DBAPIError, OSError, TimeoutError)

_request_key: ContextVar[str | None] = ContextVar("idempotency_request_key", default=None)


def request_key() -> str | None:
    """The id under which this request's effects are de-duplicated further on (a Temporal
    update id, a receipt id): its caller's, from its Idempotency-Key. None without a key."""
    return _request_key.get()


async def caller_request_key() -> str | None:
    """`request_key()` as a route dependency."""
    return request_key()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _target(scope: Scope) -> str:
    path = bytes(scope.get("raw_path") or scope["path"].encode())
    if scope.get("query_string"):
        path += b"?" + bytes(scope["query_string"])
    return path.decode("latin-1")


async def _read_body(receive: Receive) -> bytes | None:
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


def _torn_down() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _refuse(scope: Scope, receive: Receive, send: Send, error: ApiError) -> None:
    response = JSONResponse(
        error_body(error.code, error.message, error.details),
        status_code=error.status,
        headers=error.headers,
    )
    await response(scope, receive, send)


async def _send(send: Send, answer: repo.StoredAnswer, replayed: bool = False) -> None:
    headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in answer.headers]
    if replayed:
        headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


REUSED = ApiError(
    422, "idempotency_key_reused", f"this {HEADER} was used for a different request; use a new key"
)
IN_PROGRESS = ApiError(
    409,
    "request_in_progress",
    f"a request with this {HEADER} is still running; retry to get its answer",
    headers={"Retry-After": "1"},
)
MALFORMED = ApiError(
    422,
    "invalid_idempotency_key",
    f"an {HEADER} is 1 to {MAX_KEY_LENGTH} visible ASCII characters",
)
UNREADABLE = ApiError(
    409, "answer_unreadable", f"the answer kept for this {HEADER} cannot be read; use a new key"
)


class IdempotencyMiddleware:
    """Claims the caller's key, runs the request once, keeps and replays its answer.

    An outage of PostgreSQL while claiming is raised, and answered 503 as anywhere else."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._next_purge = 0.0
        self._operations: list[tuple[str, re.Pattern[str]]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, b"idempotency-key") if scope["type"] == "http" else None
        if key is None or not self._handles(scope):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            api_key = presented_key(request)
            principal = (await get_caller(request)).key_id
        except ApiError:
            # The route refuses the caller itself, and that answer is not kept.
            await self.app(scope, receive, send)
            return
        if not KEY_FORMAT.fullmatch(key):
            await _refuse(scope, receive, send, MALFORMED)
            return
        body = await _read_body(receive)
        if body is None:
            return
        fingerprint = request_hash(scope["method"], _target(scope), body)
        settings: Settings = scope["app"].state.settings
        sessions = scope["app"].state.sessions
        await self._purge_now_and_then(sessions, settings.idempotency_ttl_seconds)
        async with sessions.begin() as session:
            claim = await repo.claim(
                session,
                principal,
                key,
                fingerprint,
                lease_seconds=settings.idempotency_lease_seconds,
                ttl_seconds=settings.idempotency_ttl_seconds,
            )
        if claim.outcome is repo.Outcome.REUSED:
            await _refuse(scope, receive, send, REUSED)
        elif claim.outcome is repo.Outcome.IN_PROGRESS:
            await _refuse(scope, receive, send, IN_PROGRESS)
        elif claim.outcome is repo.Outcome.REPLAY:
            assert claim.answer is not None
            stored = claim.answer
            try:
                opened = sealing.unseal(api_key, stored.body)
            except sealing.Unreadable:
                log.error("the answer kept under %s of %s cannot be unsealed", key, principal)
                await _refuse(scope, receive, send, UNREADABLE)
                return
            await _send(send, repo.StoredAnswer(stored.status, stored.headers, opened), True)
        else:
            run = _Run(self.app, sessions, api_key, principal, key, claim.token)
            reset = _request_key.set(make_request_key(principal, key, fingerprint))
            try:
                answer = await run(scope, receive, body)
            finally:
                _request_key.reset(reset)
            if answer is not None:
                await _send(send, answer)

    def _handles(self, scope: Scope) -> bool:
        """Whether the request is for an operation that takes keys here. A method the path
        does not have is left to the router (405), which answers it without running anything."""
        if scope["method"] not in CHANGING:
            return False
        if self._operations is None:
            paths = scope["app"].openapi()["paths"]
            self._operations = [
                (method.upper(), compile_path(path)[0])
                for path, item in paths.items()
                for method in item
                if takes_keys(method.upper(), path)
            ]
        return any(
            method == scope["method"] and pattern.match(scope["path"])
            for method, pattern in self._operations
        )

    async def _purge_now_and_then(self, sessions: Any, ttl_seconds: float) -> None:
        now = time.monotonic()
        if now < self._next_purge:
            return
        self._next_purge = now + PURGE_EVERY_SECONDS
        async with sessions.begin() as session:
            gone = await repo.purge(session, ttl_seconds)
        if gone:
            log.info("purged %d expired idempotency keys", gone)


class _Run:
    """One run of a request that holds its key's claim."""

    def __init__(
        self, app: ASGIApp, sessions: Any, api_key: str, principal: str, key: str, token: str
    ) -> None:
        self.app = app
        self.sessions = sessions
        self.api_key = api_key
        self.principal = principal
        self.key = key
        self.token = token

    async def __call__(
        self, scope: Scope, receive: Receive, body: bytes
    ) -> repo.StoredAnswer | None:
        """Run the request, keep its answer if it is one to keep, and return it unsent."""
        start: Message | None = None
        chunks: list[bytes] = []
        body_given = False

        async def replay_body() -> Message:
            nonlocal body_given
            if not body_given:
                body_given = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        heartbeat = asyncio.create_task(self._keep_claim(scope))
        try:
            await self.app(scope, replay_body, capture)
        except Exception:
            if not _torn_down():
                log.warning(
                    "freeing %s of %s after %r", self.key, self.principal, sys.exc_info()[1]
                )
                await self._release()
            raise
        finally:
            heartbeat.cancel()
        if _torn_down():
            # Stopped mid-request (the server shuts down), whatever the app made of that:
            # whether the change was made is not known, so the claim is left to its lease,
            # as when the process dies.
            raise asyncio.CancelledError
        if start is None:
            await self._release()
            return None
        answer = repo.StoredAnswer(
            status=start["status"],
            headers=[(n.decode("latin-1"), v.decode("latin-1")) for n, v in start["headers"]],
            body=b"".join(chunks),
        )
        if kept(answer.status):
            await self._keep(answer)
        else:
            await self._release()
        return answer

    async def _keep_claim(self, scope: Scope) -> None:
        """Renew the claim while the request runs: the lease then only has to outlast the
        gap between two renewals, and a retry after this process died waits that long."""
        every = scope["app"].state.settings.idempotency_lease_seconds / 3
        while True:
            await asyncio.sleep(every)
            try:
                async with self.sessions.begin() as session:
                    if not await repo.renew(session, self.principal, self.key, self.token):
                        return
            except UNREACHABLE:
                log.warning("could not renew %s of %s", self.key, self.principal)

    async def _keep(self, answer: repo.StoredAnswer) -> None:
        sealed = sealing.seal(self.api_key, answer.body)
        try:
            async with self.sessions.begin() as session:
                kept_it = await repo.complete(
                    session,
                    self.principal,
                    self.key,
                    self.token,
                    repo.StoredAnswer(answer.status, answer.headers, sealed),
                )
        except UNREACHABLE:
            # The change is made and its answer is still the client's. A retry after the lease
            # runs the request again, which update ids make harmless where it reaches an order.
            log.exception("could not keep the answer under %s of %s", self.key, self.principal)
            return
        if not kept_it:
            log.warning("%s of %s was taken over before it answered", self.key, self.principal)

    async def _release(self) -> None:
        try:
            async with self.sessions.begin() as session:
                await repo.release(session, self.principal, self.key, self.token)
        except UNREACHABLE:
            # The claim then ends with its lease.
            log.exception("could not free %s of %s", self.key, self.principal)


HEADER_PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Makes the request safe to retry: the same key with the same request returns the first "
        "answer (with `Idempotent-Replayed: true`); keys are the caller's own and kept a day."
    ),
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        "pattern": "^[!-~]+$",
    },
}


def document_idempotency(schema: dict[str, Any]) -> None:
    """Name the header on every operation that takes it, and the refusals it can bring."""
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            placing = places_order(method.upper(), path)
            if not placing and not takes_keys(method.upper(), path):
                continue
            params = operation.setdefault("parameters", [])
            if not any(
                p.get("in") == "header" and p.get("name", "").lower() == HEADER.lower()
                for p in params
            ):
                params.append(HEADER_PARAMETER)
            if placing:
                continue
            responses = operation.setdefault("responses", {})
            # 503: PostgreSQL down while the key is claimed.
            for status in (409, 422, 503):
                responses.setdefault(
                    str(status),
                    {
                        "description": ERROR_MEANINGS[status],
                        "content": {"application/json": {"schema": {"$ref": REF}}},
                    },
                )


def install_idempotency(app: FastAPI) -> None:
    """Handle Idempotency-Key on every changing route, and say so in the OpenAPI document.

    Install after the OpenAPI document and before the body size limit, which must stay the
    outer middleware so that an oversize body is refused before it is read here."""
    app.add_middleware(IdempotencyMiddleware)
    documented = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_idempotency(documented())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
