"""The order read model, its history, intake keys, payments and shipments."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import cast, delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from models import request_refusals
from models.notifications import Notification
from models.order import AlertRecord, DeliveryOption, HistoryEntry, OrderView
from models.order_states import fulfilment_state, payment_state
from models.tables import (
    Alert,
    Customer,
    Order,
    OrderCustomerName,
    OrderEvent,
    OrderIntake,
    OrderLineRow,
    OrderLink,
    OutboxMessage,
    Payment,
    Product,
    Shipment,
)


async def save_view(session: AsyncSession, view: OrderView, seq: int, version: int = 0) -> bool:
    """Upsert the order row, its lines, payments, shipments and new history entries, unless
    what is stored is newer; returns whether this write was kept.

    `version` orders the writer's workflow tasks (`workflows.steps.task_version`). A task that
    never completes (its worker or the server died) may already have written; the attempt that
    completes started later, so its write wins even with a smaller `seq`, and history entries
    from `view.history[0].seq` on are replaced, not kept beside the stale ones. Within one task
    (same version) the larger `seq` wins.

    Lines, payments and shipments equal to the stored view's are not written again: most
    writes change the status and add history, and each statement costs the worker more than
    the database.
    """
    # Locked until commit, so concurrent writes of one order take turns and each compares
    # against what the one before it stored.
    stored = (
        await session.execute(
            select(
                Order.view["lines"], Order.view["payments"], Order.view["shipments"], Order.last_seq
            )
            .where(Order.order_id == view.order_id)
            .with_for_update()
        )
    ).first()
    values: dict[str, Any] = {
        "order_id": view.order_id,
        "customer_id": view.customer.id,
        "customer_name": view.customer.name,
        "customer_email": view.customer.email,
        "customer_phone": view.customer.phone or "",
        "channel": view.channel.value,
        "channel_order_id": view.channel_order_id,
        "status": view.status.value,
        "total": view.totals.total,
        "currency": view.totals.currency,
        "view": view.model_dump(mode="json", exclude={"history"}),
        "last_seq": seq,
        "version": version,
        "created_at": view.created_at,
        "updated_at": view.updated_at,
    }
    stmt = insert(Order).values(**values)
    upsert = stmt.on_conflict_do_update(
        index_elements=[Order.order_id],
        set_={k: stmt.excluded[k] for k in values if k not in ("order_id", "created_at")},
        # A retried write of an older state must not overwrite a newer one.
        where=tuple_(Order.version, Order.last_seq)
        <= tuple_(stmt.excluded.version, stmt.excluded.last_seq),
    ).returning(Order.order_id)
    if (await session.execute(upsert)).first() is None:
        return False
    doc = values["view"]
    old_lines, old_payments, old_shipments, old_seq = stored or (None, None, None, None)
    if doc["lines"] != old_lines:
        await _save_lines(session, view)
    if doc["payments"] != old_payments:
        for p in view.payments:
            await record_payment(
                session,
                order_id=view.order_id,
                authorization_id=p.authorization_id,
                amount=p.amount,
                currency=p.currency,
                status=p.status,
                captured=p.captured,
            )
    if doc["shipments"] != old_shipments:
        # A split order's parcel has no carrier id until it is booked.
        for sh in (sh for sh in view.shipments if sh.shipment_id):
            await record_shipment(
                session,
                order_id=view.order_id,
                shipment_id=sh.shipment_id,
                tracking_number=sh.tracking_number,
                warehouse_id=sh.warehouse,
                status=sh.status,
            )
    if view.history:
        # Entries from a write that lost (see above) sit where these go.
        if old_seq is None or old_seq >= view.history[0].seq:
            await session.execute(
                delete(OrderEvent).where(
                    OrderEvent.order_id == view.order_id, OrderEvent.seq >= view.history[0].seq
                )
            )
        await session.execute(
            insert(OrderEvent)
            .values(
                [
                    {
                        "order_id": view.order_id,
                        "seq": h.seq,
                        "at": h.at,
                        "kind": h.kind,
                        "actor": h.actor,
                        "status": h.status.value,
                        "detail": h.detail,
                    }
                    for h in view.history
                ]
            )
            .on_conflict_do_nothing()
        )
    return True


async def _save_lines(session: AsyncSession, view: OrderView) -> None:
    await session.execute(delete(OrderLineRow).where(OrderLineRow.order_id == view.order_id))
    if view.lines:
        await session.execute(
            insert(OrderLineRow).values(
                [
                    {
                        "order_id": view.order_id,
                        "sku": ln.sku,
                        "quantity": ln.quantity,
                        "created_at": view.created_at,
                        "unit_price": ln.unit_price,
                        "line_total": ln.line_total,
                    }
                    for ln in view.lines
                ]
            )
        )


async def upsert_customer(session: AsyncSession, view: OrderView) -> None:
    """Keep the customer record current with the latest order's contact details."""
    c = view.customer
    stmt = insert(Customer).values(id=c.id, name=c.name, email=c.email, phone=c.phone)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[Customer.id],
            set_={"name": c.name, "email": c.email, "phone": c.phone},
        )
    )


async def load_view(session: AsyncSession, order_id: str) -> OrderView | None:
    """The order as last recorded, with its full history."""
    row = await session.get(Order, order_id)
    if row is None:
        return None
    events = (
        await session.execute(
            select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.seq)
        )
    ).scalars()
    view = OrderView.model_validate(row.view)
    view.history = [
        HistoryEntry(
            seq=e.seq, at=e.at, kind=e.kind, actor=e.actor, status=e.status, detail=e.detail
        )
        for e in events
    ]
    refused = await request_refusals.history_of(session, order_id)
    if refused:
        # Stable: an entry of the workflow's stays before a refusal made at the same instant.
        view.history = sorted([*view.history, *refused], key=lambda h: h.at)
    return view


SORTS = ("newest", "oldest", "total_desc", "total_asc")


@dataclass
class OrderFilter:
    """What `GET /orders` may filter on; every given filter must hold."""

    customer_id: str | None = None
    customer_name: str | None = None
    customer_email: str | None = None
    customer_phone: str | None = None
    status: str | None = None
    # Any of these statuses (the console filters by several at once).
    statuses: tuple[str, ...] = ()
    sku: str | None = None
    product: str | None = None
    channel: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    total_min: Decimal | None = None
    total_max: Decimal | None = None
    q: str | None = None
    sort: str = "newest"


def _contains(text: str) -> str:
    # LIKE wildcards in what a user typed are matched literally.
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def encode_cursor(sort: str, key: Any, order_id: str) -> str:
    """An opaque cursor for keyset pagination: the sort, and the last row's key and number."""
    value = key.isoformat() if isinstance(key, datetime) else str(key)
    raw = json.dumps([sort, value, order_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[Any, str]:
    """The position a cursor points at; ValueError when it is not one of ours for this sort."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        made_for, value, order_id = json.loads(base64.urlsafe_b64decode(padded))
        key: Any = datetime.fromisoformat(value) if made_for in SORTS[:2] else Decimal(value)
    except Exception as exc:
        raise ValueError("cursor is not valid") from exc
    if made_for != sort:
        raise ValueError(f"the cursor was made for sort={made_for}, not sort={sort}")
    return key, str(order_id)


def _product_orders(text: str) -> Any:
    names = select(Product.sku).where(Product.name.ilike(_contains(text)))
    return select(OrderLineRow.order_id).where(
        OrderLineRow.sku.in_(names) | (OrderLineRow.sku == text.upper())
    )


# Up to this many matching names, their orders are fetched by name; beyond it, they are so
# common that walking the orders in page order meets a page of them soonest.
NAMES_LISTED = 500


async def _name_matches(session: AsyncSession, text: str) -> Any:
    like = _contains(text)
    names = (
        await session.scalars(
            select(OrderCustomerName.name)
            .where(OrderCustomerName.name.ilike(like))
            .limit(NAMES_LISTED + 1)
        )
    ).all()
    if len(names) <= NAMES_LISTED:
        return Order.customer_name.in_(names)
    # Concatenated, the column no longer matches its trigram index, which for so common a
    # match would read most of it: the planner walks the page order's index instead.
    return (Order.customer_name + "").ilike(like)


async def search_orders(
    session: AsyncSession, f: OrderFilter, limit: int, cursor: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """Order summaries matching every given filter, in `f.sort` order, and the next cursor."""
    if f.sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}")
    stmt = select(Order)
    for column, value in (
        (Order.customer_id, f.customer_id),
        (Order.status, f.status),
        (Order.channel, f.channel),
    ):
        if value:
            stmt = stmt.where(column == value)
    if f.statuses:
        stmt = stmt.where(Order.status.in_(f.statuses))
    if f.customer_name:
        stmt = stmt.where(await _name_matches(session, f.customer_name))
    for column, text in (
        (Order.customer_email, f.customer_email),
        (Order.customer_phone, f.customer_phone),
    ):
        if text:
            stmt = stmt.where(column.ilike(_contains(text)))
    if f.created_from:
        stmt = stmt.where(Order.created_at >= f.created_from)
    if f.created_to:
        stmt = stmt.where(Order.created_at < f.created_to)
    if f.total_min is not None:
        stmt = stmt.where(Order.total >= f.total_min)
    if f.total_max is not None:
        stmt = stmt.where(Order.total <= f.total_max)
    by_time = f.sort in ("newest", "oldest")
    if f.sku and by_time:
        # Walk the SKU's index in time order and stop at the page: no sort of all its orders.
        stmt = stmt.join(
            OrderLineRow, (OrderLineRow.order_id == Order.order_id) & (OrderLineRow.sku == f.sku)
        )
    elif f.sku:
        stmt = stmt.where(
            Order.order_id.in_(select(OrderLineRow.order_id).where(OrderLineRow.sku == f.sku))
        )
    if f.product:
        stmt = stmt.where(Order.order_id.in_(_product_orders(f.product)))
    if f.q:
        like = _contains(f.q)
        stmt = stmt.where(
            Order.order_id.ilike(like)
            | Order.customer_name.ilike(like)
            | Order.customer_email.ilike(like)
            | Order.customer_phone.ilike(like)
            | Order.channel_order_id.ilike(like)
            | Order.order_id.in_(_product_orders(f.q))
        )
    key_col: Any = Order.created_at if by_time else Order.total
    id_col: Any = Order.order_id
    if f.sku and by_time:
        key_col, id_col = OrderLineRow.created_at, OrderLineRow.order_id
    descending = f.sort in ("newest", "total_desc")
    if cursor:
        key, oid = decode_cursor(cursor, f.sort)
        after = tuple_(key_col, id_col)
        stmt = stmt.where(after < tuple_(key, oid) if descending else after > tuple_(key, oid))
    order = (key_col.desc(), id_col.desc()) if descending else (key_col, id_col)
    stmt = stmt.order_by(*order).limit(limit + 1)
    rows = list((await session.execute(stmt)).scalars())
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        key_value = last.created_at if by_time else last.total
        next_cursor = encode_cursor(f.sort, key_value, last.order_id)
    return [summary(r) for r in page], next_cursor


def summary(row: Order) -> dict[str, Any]:
    """The short form of an order used in lists."""
    return {
        "order_id": row.order_id,
        "status": row.status,
        "customer_id": row.customer_id,
        "customer_name": row.customer_name,
        "channel": row.channel,
        "channel_order_id": row.channel_order_id,
        # Orders recorded before the option existed were all standard.
        "delivery": row.view.get("delivery", DeliveryOption.STANDARD.value),
        "total": {"amount": str(row.total), "currency": row.currency},
        "payment_state": payment_state(row.view),
        "fulfilment_state": fulfilment_state(row.view),
        "skus": [ln["sku"] for ln in row.view.get("lines", [])],
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


async def find_intake(session: AsyncSession, key: str) -> OrderIntake | None:
    """The create request already accepted under this key, if any."""
    return await session.get(OrderIntake, key)


async def order_known(session: AsyncSession, order_id: str) -> bool:
    """Was this order placed (through intake) or made by the system (an exchange)?"""
    if await session.get(Order, order_id) is not None:
        return True
    return await find_intake_by_order(session, order_id) is not None


async def order_owner(session: AsyncSession, order_id: str) -> str | None:
    """The customer an order belongs to, or None when there is no such order."""
    order = await session.get(Order, order_id)
    if order is not None:
        return order.customer_id
    intake = await find_intake_by_order(session, order_id)
    if intake is None:
        return None
    return intake.customer_id or str(intake.workflow_input.get("customer", {}).get("id", ""))


async def find_intake_by_order(session: AsyncSession, order_id: str) -> OrderIntake | None:
    """The create request behind an order number: the proof the order exists."""
    rows = await session.execute(
        select(OrderIntake).where(OrderIntake.order_id == order_id).limit(1)
    )
    return rows.scalars().first()


async def claim_intake(
    session: AsyncSession,
    key: str,
    order_id: str,
    request_hash: str,
    workflow_input: dict[str, Any],
    *,
    placed_by_customer: bool = True,
) -> OrderIntake:
    """Record a create request under its key; when the key is taken, the earlier request wins.

    Only orders the customer placed count towards the velocity rule (not an exchange).
    """
    customer = workflow_input.get("customer") or {}
    await session.execute(
        insert(OrderIntake)
        .values(
            key=key,
            order_id=order_id,
            customer_id=customer.get("id") if placed_by_customer else None,
            request_hash=request_hash,
            workflow_input=workflow_input,
        )
        .on_conflict_do_nothing(index_elements=[OrderIntake.key])
    )
    row = await session.get(OrderIntake, key, populate_existing=True)
    assert row is not None
    return row


async def record_payment(
    session: AsyncSession,
    *,
    order_id: str,
    authorization_id: str,
    amount: Decimal,
    currency: str,
    status: str,
    captured: Decimal,
) -> None:
    """Upsert our record of one authorization."""
    stmt = insert(Payment).values(
        authorization_id=authorization_id,
        order_id=order_id,
        amount=amount,
        currency=currency,
        status=status,
        captured=captured,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[Payment.authorization_id],
            set_={"amount": amount, "status": status, "captured": captured},
        )
    )


async def record_shipment(
    session: AsyncSession,
    *,
    order_id: str,
    shipment_id: str,
    tracking_number: str,
    warehouse_id: str,
    status: str,
) -> None:
    """Upsert our record of one shipment."""
    stmt = insert(Shipment).values(
        shipment_id=shipment_id,
        order_id=order_id,
        tracking_number=tracking_number,
        warehouse_id=warehouse_id,
        status=status,
    )
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[Shipment.shipment_id], set_={"status": status})
    )


async def payments_of(session: AsyncSession, order_id: str) -> list[Payment]:
    """Every authorization recorded for an order."""
    rows = await session.execute(select(Payment).where(Payment.order_id == order_id))
    return list(rows.scalars())


async def save_alerts(session: AsyncSession, order_id: str, alerts: list[AlertRecord]) -> None:
    """Upsert an order's alerts; (order_id, seq) identifies each."""
    for a in alerts:
        stmt = insert(Alert).values(
            order_id=order_id,
            seq=a.seq,
            kind=a.kind,
            severity=a.severity,
            message=a.message,
            created_at=a.at,
            resolved_at=a.at if a.resolved else None,
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[Alert.order_id, Alert.seq],
                set_={"resolved_at": func.coalesce(Alert.resolved_at, stmt.excluded.resolved_at)},
            )
        )


async def list_alerts(
    session: AsyncSession, order_id: str | None, open_only: bool, limit: int
) -> list[dict[str, Any]]:
    """Alerts, newest first."""
    stmt = select(Alert)
    if order_id:
        stmt = stmt.where(Alert.order_id == order_id)
    if open_only:
        stmt = stmt.where(Alert.resolved_at.is_(None))
    rows = await session.execute(stmt.order_by(Alert.created_at.desc()).limit(limit))
    return [
        {
            "order_id": a.order_id,
            "seq": a.seq,
            "kind": a.kind,
            "severity": a.severity,
            "message": a.message,
            "created_at": a.created_at.isoformat(),
            "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None,
        }
        for a in rows.scalars()
    ]


async def enqueue_notifications(session: AsyncSession, notes: list[Notification]) -> None:
    """Put emails in the outbox; a key already there is not added again."""
    if not notes:
        return
    await session.execute(
        insert(OutboxMessage)
        .values(
            [
                {
                    "key": n.key,
                    "order_id": n.order_id,
                    "kind": n.kind,
                    "recipient": n.to,
                    "subject": n.subject,
                    "body": n.text,
                }
                for n in notes
            ]
        )
        .on_conflict_do_nothing(index_elements=[OutboxMessage.key])
    )


async def claim_pending_mail(session: AsyncSession, limit: int) -> list[OutboxMessage]:
    """Pending emails, oldest first, locked so that two dispatchers never send the same one."""
    rows = await session.execute(
        select(OutboxMessage)
        .where(OutboxMessage.status == "pending")
        .order_by(OutboxMessage.created_at, OutboxMessage.key)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(rows.scalars())


async def communication_log(session: AsyncSession, order_id: str) -> list[dict[str, Any]]:
    """Every email written for an order, with whether and when it was sent."""
    rows = await session.execute(
        select(OutboxMessage)
        .where(OutboxMessage.order_id == order_id)
        .order_by(OutboxMessage.created_at, OutboxMessage.key)
    )
    return [
        {
            "key": m.key,
            "kind": m.kind,
            "to": m.recipient,
            "subject": m.subject,
            "status": m.status,
            "sent_at": m.sent_at.isoformat() if m.sent_at else None,
        }
        for m in rows.scalars()
    ]


async def merge_partners(
    session: AsyncSession,
    order_id: str,
    customer_id: str,
    ship_to: dict[str, Any],
    placed_after: datetime,
    placed_before: datetime,
) -> list[str]:
    """Confirmed orders of the customer to the same address placed in the window, oldest first.

    Only orders placed before this one count, so two orders never both start a merge.
    """
    rows = await session.execute(
        select(Order.order_id)
        .where(
            Order.customer_id == customer_id,
            Order.status == "CONFIRMED",
            Order.order_id != order_id,
            Order.created_at >= placed_after,
            Order.created_at <= placed_before,
            Order.view["ship_to"] == cast(ship_to, JSONB),
        )
        .order_by(Order.created_at, Order.order_id)
        .limit(19)
    )
    return list(rows.scalars())


# Each kind of link and the name it has seen from the other order.
LINK_INVERSE = {"reorder_of": "reordered_as", "reordered_as": "reorder_of"}
# Statuses of orders still under way, for "the customer's other open orders".
OPEN_STATUSES = (
    "PLACED",
    "PENDING_REVIEW",
    "AWAITING_PAYMENT",
    "BACKORDERED",
    "CONFIRMED",
    "PICKING",
    "PACKED",
    "PARTIALLY_SHIPPED",
    "SHIPPED",
    "DELIVERED",
    "RETURN_REQUESTED",
)


async def link_orders(session: AsyncSession, order_id: str, kind: str, other_id: str) -> None:
    """Link two orders both ways (e.g. a reorder and the order it repeats)."""
    rows = [
        {"order_id": order_id, "kind": kind, "other_id": other_id},
        {"order_id": other_id, "kind": LINK_INVERSE[kind], "other_id": order_id},
    ]
    await session.execute(insert(OrderLink).values(rows).on_conflict_do_nothing())


async def links_of(session: AsyncSession, order_id: str, customer_id: str) -> list[dict[str, str]]:
    """Links kept in the read model, and the customer's other orders still under way."""
    kept = await session.execute(
        select(OrderLink.kind, OrderLink.other_id)
        .where(OrderLink.order_id == order_id)
        .order_by(OrderLink.created_at)
    )
    others = await session.execute(
        select(Order.order_id)
        .where(
            Order.customer_id == customer_id,
            Order.order_id != order_id,
            Order.status.in_(OPEN_STATUSES),
        )
        .order_by(Order.created_at.desc())
        .limit(20)
    )
    return [{"type": k, "id": o} for k, o in kept] + [
        {"type": "same_customer_open", "id": o} for o in others.scalars()
    ]
