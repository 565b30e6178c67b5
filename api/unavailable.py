"""A dependency that cannot be reached, PostgreSQL or Temporal, answers 503 with Retry-After.

Every way such an outage surfaces is recognised here, and only here: SQLAlchemy's wrapped driver
errors, the pool running dry, a raw socket error from a database driver, Temporal's RPC
statuses for "not reachable" and a Temporal client that could not connect. A failure that is not
an outage stays what it is: a fault of ours, answered 500 in the same error shape.
"""

from __future__ import annotations

import logging
import traceback
from types import TracebackType
from typing import Literal

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import error_body

log = logging.getLogger(__name__)

# The names /healthz gives the parts, also given in a 503's details.
Part = Literal["postgres", "temporal"]
POSTGRES: Part = "postgres"
TEMPORAL: Part = "temporal"
# Seconds a client is asked to wait: a restart of either part takes about that long.
RETRY_AFTER_SECONDS = 5

CODES: dict[Part, str] = {POSTGRES: "database_unavailable", TEMPORAL: "temporal_unavailable"}
MESSAGES: dict[Part, str] = {
    POSTGRES: "the database (PostgreSQL) cannot be reached just now; try again shortly",
    TEMPORAL: "Temporal, which runs the orders, cannot be reached just now; try again shortly",
}

# PostgreSQL's own words for "no connection": connection exceptions (class 08), the server
# shutting down or starting up, and no connection slot left.
_LOST_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# What the Temporal client reports when the server is gone, overloaded or cut off mid-call.
_TEMPORAL_DOWN = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.UNKNOWN,
        RPCStatusCode.RESOURCE_EXHAUSTED,
    }
)
_DATABASE_DRIVERS = ("sqlalchemy", "psycopg", "asyncpg")


class DependencyUnavailable(Exception):
    """Raised where code of ours finds a part down itself."""

    def __init__(self, part: Part, reason: str) -> None:
        super().__init__(f"{part}: {reason}")
        self.part = part


def _lost_connection(error: BaseException | None) -> bool:
    if isinstance(error, psycopg.InterfaceError):
        return True
    if not isinstance(error, psycopg.OperationalError):
        return False
    state = error.sqlstate
    return state is None or state.startswith("08") or state in _LOST_SQLSTATES


def _raised_in(tb: TracebackType | None) -> Part | None:
    # A driver that lets a socket error through unwrapped (asyncpg does) is known by where it
    # was raised: the innermost frame of a client library.
    part: Part | None = None
    for frame, _ in traceback.walk_tb(tb):
        module = str(frame.f_globals.get("__name__", ""))
        if module.startswith(_DATABASE_DRIVERS):
            part = POSTGRES
        elif module.startswith("temporalio"):
            part = TEMPORAL
    return part


def _part_of(error: BaseException) -> Part | None:
    if isinstance(error, DependencyUnavailable):
        return error.part
    if isinstance(error, sa_exc.TimeoutError):
        # Every connection of the pool is taken and none came back in time.
        return POSTGRES
    if isinstance(error, sa_exc.DBAPIError):
        return POSTGRES if error.connection_invalidated or _lost_connection(error.orig) else None
    if isinstance(error, psycopg.Error):
        return POSTGRES if _lost_connection(error) else None
    if isinstance(error, RPCError):
        return TEMPORAL if error.status in _TEMPORAL_DOWN else None
    if isinstance(error, RPCTimeoutOrCancelledError):
        return TEMPORAL
    if isinstance(error, RuntimeError) and str(error).startswith("Failed client connect"):
        # A client made while Temporal was down connects on its first call, and fails so.
        return TEMPORAL
    if isinstance(error, OSError):
        return _raised_in(error.__traceback__)
    return None


def down_part(error: BaseException) -> Part | None:
    """The part an error shows to be down, or None when it is not an outage.

    An error raised while handling an outage (its cause or context) is that outage too."""
    seen: set[int] = set()
    todo: list[BaseException] = [error]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        part = _part_of(current)
        if part is not None:
            return part
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)
    return None


def unavailable_response(part: Part) -> JSONResponse:
    """The 503 for a part that is down."""
    return JSONResponse(
        error_body(CODES[part], MESSAGES[part], {"dependency": part}),
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


# Every class an outage can be raised as; the handler re-raises what is not an outage.
_OUTAGE_CLASSES: tuple[type[Exception], ...] = (
    DependencyUnavailable,
    sa_exc.SQLAlchemyError,
    psycopg.Error,
    RPCError,
    RPCTimeoutOrCancelledError,
    RuntimeError,
    OSError,
    ExceptionGroup,
)


def install_unavailable_handlers(app: FastAPI) -> None:
    """Answer an outage with 503, wherever in a request it is raised."""

    async def _outage(request: Request, error: Exception) -> JSONResponse:
        part = down_part(error)
        if part is None:
            raise error
        log.warning("%s %s: %s is down: %r", request.method, request.url.path, part, error)
        return unavailable_response(part)

    # Raised by a route or a dependency: answered here, so that middleware sees the answer.
    for cls in _OUTAGE_CLASSES:
        app.add_exception_handler(cls, _outage)

    async def _unhandled(request: Request, error: Exception) -> JSONResponse:
        # Raised by a middleware, or not an outage at all. Starlette logs the error after this.
        part = down_part(error)
        if part is not None:
            return unavailable_response(part)
        return JSONResponse(
            error_body("internal_error", "an unexpected error occurred; it has been logged"),
            status_code=500,
        )

    app.add_exception_handler(Exception, _unhandled)
