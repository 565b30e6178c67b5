"""Purchasing activities: the purchase order read model, supplier emails, goods receipts."""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from models import orders_repo, supply_repo
from models.notifications import Notification
from models.purchasing import PurchaseOrderView


class SavePurchaseOrder(BaseModel):
    view: PurchaseOrderView
    # Written with the view, so an email exists iff its step happened.
    notifications: list[Notification] = Field(default_factory=list)


class ReceiveInput(BaseModel):
    """The view after the receipt (with an empty served list) and what came in."""

    view: PurchaseOrderView
    receipt_id: str
    lines: dict[str, int]
    strategy: str = "fewest_shipments"


class PurchasingActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    @activity.defn(name="purchasing.save")
    async def save(self, inp: SavePurchaseOrder) -> None:
        """Store the purchase order's current view and queue its emails."""
        async with self.sessions.begin() as session:
            await supply_repo.save_purchase_order(session, inp.view)
            await orders_repo.enqueue_notifications(session, inp.notifications)

    @activity.defn(name="purchasing.receive")
    async def receive(self, inp: ReceiveInput) -> PurchaseOrderView:
        """Book the goods, serve backorders and store the view, in one transaction.

        A retry after the commit finds the receipt booked and returns the view stored then,
        with the backorders that receipt served.
        """
        view = inp.view
        async with self.sessions.begin() as session:
            served = await supply_repo.receive_goods(
                session,
                inp.receipt_id,
                view.po_id,
                view.warehouse_id,
                inp.lines,
                inp.strategy,
            )
            if served is None:
                stored = await supply_repo.get_purchase_order(session, view.po_id)
                if stored is not None and any(
                    r.receipt_id == inp.receipt_id for r in stored.receipts
                ):
                    return stored
                served = []
            view.receipts[-1].backorders_served = served
            await supply_repo.save_purchase_order(session, view)
        return view
