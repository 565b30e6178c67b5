"""Alerts raised for staff: reviews, carrier exceptions, breached SLAs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import SessionDep
from models import orders_repo

router = APIRouter(tags=["alerts"])


@router.get("/alerts")
async def list_alerts(
    session: SessionDep,
    order_id: Annotated[str | None, Query(max_length=40)] = None,
    open_only: Annotated[bool, Query(alias="open")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Alerts, newest first; `open=true` leaves out resolved ones."""
    return {"items": await orders_repo.list_alerts(session, order_id, open_only, limit)}
