"""Records activities: the order read model and its history in PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from models import orders_repo, returns_repo
from models.notifications import Notification
from models.order import Address, AlertRecord, OrderView
from models.returns import ReturnView


class SaveViewInput(BaseModel):
    view: OrderView
    seq: int
    # When the workflow task that wrote it started: the attempt that completes wins.
    version: int = 0
    new_customer_details: bool = False
    # Written in the same transaction as the view (orders since PATCH_MAIL_AFTER_COMMIT send
    # none here: see RecordActivities.enqueue_mail).
    notifications: list[Notification] = Field(default_factory=list)
    alerts: list[AlertRecord] = Field(default_factory=list)


class SystemOrder(BaseModel):
    """An order the system places itself (an exchange), keyed by what caused it."""

    key: str
    order_id: str
    workflow_input: dict[str, Any]


class MergeQuery(BaseModel):
    order_id: str
    customer_id: str
    ship_to: Address
    placed_at: datetime
    window_seconds: float


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
            if not await orders_repo.save_view(session, inp.view, inp.seq, inp.version):
                # A newer write is there: this one's alerts and emails are stale too.
                return
            await orders_repo.save_alerts(session, inp.view.order_id, inp.alerts)
            await orders_repo.enqueue_notifications(session, inp.notifications)

    @activity.defn(name="records.enqueue_mail")
    async def enqueue_mail(self, notifications: list[Notification]) -> None:
        """Put emails in the outbox, each key once."""
        async with self.sessions.begin() as session:
            await orders_repo.enqueue_notifications(session, notifications)

    @activity.defn(name="records.claim_system_order")
    async def claim_system_order(self, inp: SystemOrder) -> None:
        """Make the order known before its workflow starts, as the API does for a placed one."""
        async with self.sessions.begin() as session:
            await orders_repo.claim_intake(
                session, inp.key, inp.order_id, "", inp.workflow_input, placed_by_customer=False
            )

    @activity.defn(name="records.save_return")
    async def save_return(self, view: ReturnView) -> None:
        """Store a return's current view."""
        async with self.sessions.begin() as session:
            await returns_repo.save_return(session, view)

    @activity.defn(name="records.merge_partners")
    async def merge_partners(self, q: MergeQuery) -> list[str]:
        """Open orders this one may ship with under the merge rule."""
        async with self.sessions() as session:
            return await orders_repo.merge_partners(
                session,
                q.order_id,
                q.customer_id,
                q.ship_to.model_dump(mode="json"),
                q.placed_at - timedelta(seconds=q.window_seconds),
                q.placed_at,
            )
