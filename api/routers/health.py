"""Health: the API, PostgreSQL and Temporal each reachable."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import SessionsDep, TemporalDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
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
