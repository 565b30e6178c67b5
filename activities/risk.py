"""Risk activity: the facts the review rules need, read from PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from pydantic import BaseModel
from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from models.risk import RiskFacts, RiskThresholds, assess
from models.tables import OrderIntake


class RiskInput(BaseModel):
    order_id: str
    customer_id: str
    total: Decimal
    ship_country: str
    bill_country: str | None = None


class RiskActivities:
    """Scores an order against the review rules."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], thresholds: RiskThresholds
    ) -> None:
        self.sessions = sessions
        self.thresholds = thresholds

    @activity.defn(name="risk.assess")
    async def assess(self, inp: RiskInput) -> list[str]:
        """The reasons this order needs review; empty when it does not."""
        # Intake rows are written when the order is placed, before its workflow records it.
        others = OrderIntake.customer_id == inp.customer_id, OrderIntake.order_id != inp.order_id
        orders = func.count(distinct(OrderIntake.order_id))
        async with self.sessions() as session:
            prior = await session.scalar(select(orders).where(*others))
            recent = await session.scalar(
                select(orders).where(
                    *others, OrderIntake.created_at > func.now() - timedelta(hours=1)
                )
            )
        facts = RiskFacts(
            total=inp.total,
            prior_orders=int(prior or 0),
            orders_last_hour=int(recent or 0),
            ship_country=inp.ship_country,
            bill_country=inp.bill_country,
        )
        return assess(facts, self.thresholds)
