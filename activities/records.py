"""Records activities: the order read model and its history in PostgreSQL."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from models import orders_repo
from models.order import OrderView


class SaveViewInput(BaseModel):
    view: OrderView
    seq: int
    new_customer_details: bool = False


class RecordActivities:
    """Keeps the read model in step with the workflow; every write is an idempotent upsert."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    @activity.defn(name="records.save_view")
    async def save_view(self, inp: SaveViewInput) -> None:
        """Store the order's current view and the history entries it carries."""
        async with self.sessions.begin() as session:
            if inp.new_customer_details:
                await orders_repo.upsert_customer(session, inp.view)
            await orders_repo.save_view(session, inp.view, inp.seq)
