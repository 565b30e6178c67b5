"""A customer's whole picture (§6, §7): profile, addresses, orders, returns, value, history."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.books import sale_value
from models.order import PaymentMethod
from models.orders_repo import summary
from models.tables import (
    Customer,
    CustomerNote,
    Order,
    OrderFeedback,
    OutboxMessage,
    Return,
)

# Orders whose money was taken and kept: they count towards lifetime value, net of refunds; an
# exchange order counts only what its credit did not pay.
VALUE_STATUSES = (
    "SHIPPED",
    "PARTIALLY_SHIPPED",
    "DELIVERED",
    "COMPLETED",
    "RETURN_REQUESTED",
    "RETURNED",
)
# Returns still under way.
OPEN_RETURN = ("REQUESTED", "APPROVED", "IN_TRANSIT", "RECEIVED")
# Loyalty: one point per whole unit of money spent, and not refunded, on orders the customer
# keeps: completed ones, and partly returned ones (RETURNED is where those end). Points are
# reckoned anew on every read, so a later refund takes its points back.
POINT_PER_UNIT = Decimal("1")
POINT_STATUSES = ("COMPLETED", "RETURNED")
# Orders that may be rated: the customer has the goods.
RATEABLE = ("DELIVERED", "COMPLETED", "RETURN_REQUESTED", "RETURNED")


async def customer_picture(session: AsyncSession, customer_id: str) -> dict[str, Any] | None:
    """Everything about one customer in one answer; None if the customer is unknown."""
    profile = await session.get(Customer, customer_id)
    orders = list(
        (
            await session.execute(
                select(Order)
                .where(Order.customer_id == customer_id)
                .order_by(Order.created_at.desc(), Order.order_id.desc())
            )
        ).scalars()
    )
    if profile is None and not orders:
        return None
    order_ids = [o.order_id for o in orders]

    addresses: list[dict[str, Any]] = []
    for o in orders:
        ship_to = o.view.get("ship_to")
        if ship_to and ship_to not in addresses:
            addresses.append(ship_to)

    value: dict[str, Decimal] = {}
    points = Decimal("0")
    for o in orders:
        spent = _spent(o)
        if o.status in VALUE_STATUSES:
            value[o.currency] = value.get(o.currency, Decimal("0")) + spent
        if o.status in POINT_STATUSES:
            points += (spent / POINT_PER_UNIT).to_integral_value(rounding=ROUND_FLOOR)

    returns = (
        await session.execute(
            select(Return)
            .where(Return.order_id.in_(order_ids), Return.status.in_(OPEN_RETURN))
            .order_by(Return.created_at)
        )
    ).scalars()
    emails = (
        await session.execute(
            select(OutboxMessage)
            .where(OutboxMessage.order_id.in_(order_ids))
            .order_by(OutboxMessage.created_at, OutboxMessage.key)
        )
    ).scalars()
    notes = (
        await session.execute(
            select(CustomerNote)
            .where(CustomerNote.customer_id == customer_id)
            .order_by(CustomerNote.created_at, CustomerNote.id)
        )
    ).scalars()
    feedback = (
        await session.execute(
            select(OrderFeedback)
            .where(OrderFeedback.customer_id == customer_id)
            .order_by(OrderFeedback.created_at)
        )
    ).scalars()

    log: list[dict[str, Any]] = [
        {
            "at": m.created_at.isoformat(),
            "type": "email",
            "order_id": m.order_id,
            "kind": m.kind,
            "to": m.recipient,
            "subject": m.subject,
            "status": m.status,
        }
        for m in emails
        if m.kind.split("-")[0] != "alert"  # staff alerts are not sent to the customer
    ] + [
        {
            "at": n.created_at.isoformat(),
            "type": "note",
            "order_id": n.order_id,
            "author": n.author,
            "text": n.text,
        }
        for n in notes
    ]
    log.sort(key=lambda e: str(e["at"]))
    latest = orders[0].view.get("customer", {}) if orders else {}
    return {
        "profile": {
            "id": customer_id,
            "name": profile.name if profile else latest.get("name", ""),
            "email": profile.email if profile else latest.get("email", ""),
            "phone": profile.phone if profile else latest.get("phone", ""),
            "since": profile.created_at.isoformat()
            if profile
            else orders[-1].created_at.isoformat(),
        },
        "addresses": addresses,
        "orders": [summary(o) for o in orders],
        "open_orders": [o.order_id for o in orders if o.status not in CLOSED_STATUSES],
        "open_returns": [
            {"return_id": r.return_id, "order_id": r.order_id, "status": r.status, "kind": r.kind}
            for r in returns
        ],
        "lifetime_value": [
            {"currency": cur, "amount": str(amount)} for cur, amount in sorted(value.items())
        ],
        "loyalty_points": int(points),
        "communication": log,
        "feedback": [
            {
                "order_id": f.order_id,
                "rating": f.rating,
                "comment": f.comment,
                "at": f.created_at.isoformat(),
            }
            for f in feedback
        ],
    }


def _spent(order: Order) -> Decimal:
    """What the customer paid for an order and kept paying: refunds and exchange credit out."""
    books = order.view.get("books") or {}
    return sale_value(
        order.total,
        order.view.get("payment_method") == PaymentMethod.EXCHANGE_CREDIT.value,
        Decimal(books.get("refunded", "0")),
    )


CLOSED_STATUSES = ("COMPLETED", "CANCELLED", "FAILED", "REFUNDED", "RETURNED")


async def add_note(
    session: AsyncSession, customer_id: str, author: str, text: str, order_id: str | None
) -> dict[str, Any]:
    """Record a staff note about the customer."""
    note = CustomerNote(customer_id=customer_id, author=author, text=text, order_id=order_id)
    session.add(note)
    await session.flush()
    await session.refresh(note)
    return {
        "id": note.id,
        "customer_id": customer_id,
        "order_id": order_id,
        "author": author,
        "text": text,
        "at": note.created_at.isoformat(),
    }


async def rate_order(
    session: AsyncSession, order_id: str, customer_id: str, rating: int, comment: str
) -> None:
    """Keep the customer's rating of an order (a new one replaces the old)."""
    stmt = insert(OrderFeedback).values(
        order_id=order_id, customer_id=customer_id, rating=rating, comment=comment
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[OrderFeedback.order_id],
            set_={"rating": rating, "comment": comment, "created_at": func.now()},
        )
    )
