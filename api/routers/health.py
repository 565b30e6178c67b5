"""Health: the API, PostgreSQL and Temporal each reachable."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from api.deps import SessionsDep, TemporalDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    # Each dependency: "ok", or "error: <kind of failure>".
    checks: dict[str, str]


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "A dependency is not reachable"}},
)
async def healthz(sessions: SessionsDep, client: TemporalDep) -> JSONResponse:
    """200 when every dependency answers, 503 naming the ones that do not."""
    checks: dict[str, Any] = {"api": "ok"}
    try:
        async with asyncio.timeout(3), sessions() as session:
            await session.execute(text("select 1"))
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"error: {type(exc).__name__}"
    try:
        async with asyncio.timeout(3):
            await client.service_client.check_health()
        checks["temporal"] = "ok"
    except Exception as exc:
        checks["temporal"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", "checks": checks},
        status_code=200 if healthy else 503,
    )
