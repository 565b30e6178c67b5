"""Health: the API, PostgreSQL and Temporal each reachable."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from api.deps import get_sessionmaker, get_temporal
from api.unavailable import POSTGRES, RETRY_AFTER_SECONDS, TEMPORAL, down_part

router = APIRouter(tags=["health"])

# Long enough for a loaded server, short enough for a load balancer's probe.
CHECK_SECONDS = 3


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    # Each part: "ok", or "error: <what failed>".
    checks: dict[str, str]
    # The parts that are down, named as in `checks`.
    down: list[str] = []


async def _check(probe: Callable[[], Awaitable[object]]) -> str:
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            await probe()
    except TimeoutError:
        return f"error: no answer within {CHECK_SECONDS} s"
    except Exception as exc:
        kind = "unreachable" if down_part(exc) is not None else "failing"
        return f"error: {kind} ({type(exc).__name__})"
    return "ok"


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "A dependency is down; `down` names it"}},
)
async def healthz(request: Request) -> JSONResponse:
    """200 when every dependency answers, 503 naming the ones that do not."""

    async def database() -> None:
        async with get_sessionmaker(request)() as session:
            await session.execute(text("select 1"))

    async def temporal() -> None:
        await get_temporal(request).service_client.check_health()

    postgres_state, temporal_state = await asyncio.gather(_check(database), _check(temporal))
    checks = {"api": "ok", POSTGRES: postgres_state, TEMPORAL: temporal_state}
    down = [part for part in (POSTGRES, TEMPORAL) if checks[part] != "ok"]
    return JSONResponse(
        {"status": "degraded" if down else "ok", "checks": checks, "down": down},
        status_code=503 if down else 200,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)} if down else None,
    )
