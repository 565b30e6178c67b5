"""Today's replenishment plan with the settings' defaults filled in."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from models import supply_repo
from orderflow.settings import Settings


async def todays_plan(
    session: AsyncSession,
    settings: Settings,
    skus: Sequence[str] | None,
    window_days: int | None,
    review_days: int | None,
) -> tuple[int, int, list[supply_repo.Plan]]:
    """The window and review period used, and a plan per SKU (due or not)."""
    window = window_days or settings.replenishment_window_days
    review = settings.replenishment_review_days if review_days is None else review_days
    plans = await supply_repo.replenishment_plan(
        session,
        datetime.now(UTC).date(),
        window,
        review,
        settings.default_lead_time_days,
        skus,
    )
    return window, review, plans
