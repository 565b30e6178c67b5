"""Which failures are a part being down (answered 503) and which are faults (answered 500)."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors as pg_errors
from sqlalchemy import exc as sa_exc
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from api.unavailable import POSTGRES, TEMPORAL, DependencyUnavailable, down_part


def _wrapped(orig: Exception) -> sa_exc.DBAPIError:
    return sa_exc.DBAPIError.instance("select 1", {}, orig, psycopg.Error)


def _raised_in(module: str, error: Exception) -> Exception:
    """`error` as raised by code of `module` (a driver that lets socket errors through)."""
    scope: dict[str, object] = {"__name__": module, "error": error}
    exec("def connect():\n    raise error\n", scope)
    try:
        scope["connect"]()  # type: ignore[operator]
    except Exception as raised:
        return raised
    raise AssertionError("not raised")


def _during(outage: Exception, error: Exception) -> Exception:
    try:
        try:
            raise outage
        except Exception:
            raise error  # noqa: B904
    except Exception as raised:
        return raised
    raise AssertionError("not raised")


@pytest.mark.parametrize(
    ("error", "part"),
    [
        (_wrapped(psycopg.OperationalError("connection failed: Connection refused")), POSTGRES),
        (_wrapped(pg_errors.AdminShutdown("terminating connection")), POSTGRES),
        (_wrapped(pg_errors.CannotConnectNow("the database system is starting up")), POSTGRES),
        (_wrapped(pg_errors.TooManyConnections("too many clients")), POSTGRES),
        (_wrapped(psycopg.InterfaceError("the connection is closed")), POSTGRES),
        (sa_exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached"), POSTGRES),
        (pg_errors.ConnectionFailure("connection failure"), POSTGRES),
        (_raised_in("asyncpg.connect_utils", ConnectionRefusedError(111, "refused")), POSTGRES),
        (RPCError("tcp connect error", RPCStatusCode.UNAVAILABLE, b""), TEMPORAL),
        (RPCError("deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b""), TEMPORAL),
        (RPCError("transport error", RPCStatusCode.UNKNOWN, b""), TEMPORAL),
        (RuntimeError("Failed client connect: Server connection error"), TEMPORAL),
        (WorkflowUpdateRPCTimeoutOrCancelledError(), TEMPORAL),
        (DependencyUnavailable(TEMPORAL, "no client yet"), TEMPORAL),
        (_during(RPCError("gone", RPCStatusCode.UNAVAILABLE, b""), KeyError("x")), TEMPORAL),
        (ExceptionGroup("both", [ValueError("x"), _wrapped(pg_errors.AdminShutdown())]), POSTGRES),
    ],
)
def test_outages(error: Exception, part: str) -> None:
    assert down_part(error) == part


@pytest.mark.parametrize(
    "error",
    [
        _wrapped(pg_errors.UniqueViolation("duplicate key")),
        _wrapped(pg_errors.QueryCanceled("canceling statement due to statement timeout")),
        _wrapped(pg_errors.SerializationFailure("could not serialize access")),
        sa_exc.ArgumentError("bad argument"),
        RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b""),
        RPCError("bad request", RPCStatusCode.INVALID_ARGUMENT, b""),
        RuntimeError("something else"),
        _raised_in("providers.carrier", ConnectionRefusedError(111, "refused")),
        ValueError("a bug"),
    ],
)
def test_faults_are_not_outages(error: Exception) -> None:
    assert down_part(error) is None
