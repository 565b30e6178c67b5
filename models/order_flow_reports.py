"""How orders moved and stock turned (§8): time per stage, outcome rates, inventory turnover."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel
from sqlalchemy import Float, Numeric, cast, exists, extract, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.reports import CATEGORY, Period, placed_in, share
from models.status import MAIN_PATH
from models.status import OrderStatus as S
from models.tables import Order, OrderEvent, Product, Reservation, Return, Stock

# The main path's statuses an order leaves again; COMPLETED is where it ends.
STAGES: tuple[str, ...] = tuple(s.value for s in MAIN_PATH if s is not S.COMPLETED)
# An order's units leave the warehouse when it first reaches one of these.
_LEFT_WAREHOUSE = (S.PARTIALLY_SHIPPED.value, S.SHIPPED.value)


class StageTime(BaseModel):
    """How long orders stayed in one status, over the stays that ended."""

    status: str
    stays: int
    median_seconds: float | None
    p90_seconds: float | None


class Outcome(BaseModel):
    """How many of the period's orders came to one outcome."""

    outcome: str
    orders: int
    share: Decimal


class OutcomeRates(BaseModel):
    placed: int
    outcomes: list[Outcome]


class Turnover(BaseModel):
    """Units of a SKU shipped in the period against the units on hand."""

    sku: str
    name: str
    category: str
    units_shipped: int
    on_hand: int
    turnover: Decimal | None  # None when nothing is on hand


async def stage_times(session: AsyncSession, period: Period) -> list[StageTime]:
    """For orders placed in the period, each main-path status: the stays in it (from the event
    that set it to the next event that changed it), their median and 90th percentile.

    Stays still going on are left out; an order that comes back to a status stays twice.
    """
    events = (
        select(
            OrderEvent.order_id,
            OrderEvent.seq,
            OrderEvent.at,
            OrderEvent.status,
            func.lag(OrderEvent.status)
            .over(partition_by=OrderEvent.order_id, order_by=OrderEvent.seq)
            .label("before"),
        )
        .join(Order, Order.order_id == OrderEvent.order_id)
        .where(placed_in(period))
        .subquery()
    )
    e = events.c
    # The window runs over the status changes only, so the next row is the next change.
    stays = (
        select(
            e.status,
            e.at.label("entered"),
            func.lead(e.at).over(partition_by=e.order_id, order_by=e.seq).label("left"),
        )
        .where(e.before.is_(None) | (e.before != e.status))
        .subquery()
    )
    seconds = cast(extract("epoch", stays.c.left - stays.c.entered), Float)
    rows = await session.execute(
        select(
            stays.c.status,
            func.count(),
            func.percentile_cont(0.5).within_group(seconds),
            func.percentile_cont(0.9).within_group(seconds),
        )
        .where(stays.c.left.is_not(None), stays.c.status.in_(STAGES))
        .group_by(stays.c.status)
    )
    found = {status: (n, p50, p90) for status, n, p50, p90 in rows}
    return [
        StageTime(status=status, stays=n, median_seconds=_seconds(p50), p90_seconds=_seconds(p90))
        for status in STAGES
        for n, p50, p90 in [found.get(status, (0, None, None))]
    ]


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def outcome_rates(session: AsyncSession, period: Period) -> OutcomeRates:
    """Of the orders placed in the period: how many are now COMPLETED, CANCELLED or FAILED,
    and how many have a return (asked for, whatever became of it)."""
    has_return = exists().where(Return.order_id == Order.order_id)
    placed, completed, cancelled, failed, returned = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(Order.status == S.COMPLETED.value),
                func.count().filter(Order.status == S.CANCELLED.value),
                func.count().filter(Order.status == S.FAILED.value),
                func.count().filter(has_return),
            ).where(placed_in(period))
        )
    ).one()
    counts = {
        "completed": completed,
        "cancelled": cancelled,
        "failed": failed,
        "returned": returned,
    }
    return OutcomeRates(
        placed=placed,
        outcomes=[Outcome(outcome=k, orders=n, share=share(n, placed)) for k, n in counts.items()],
    )


async def inventory_turnover(
    session: AsyncSession, period: Period, limit: int, category: str | None = None
) -> list[Turnover]:
    """Per SKU with stock or shipments: units shipped in the period divided by the units on hand
    now (summed over warehouses), highest first.

    No stock history is kept, so today's on-hand stands for the period's average stock.
    Shipped units are the order's reserved units marked shipped, dated by the moment the
    order first left the warehouse (PARTIALLY_SHIPPED or SHIPPED); a split order's later
    parcels count on that same day.
    """
    left = (
        select(OrderEvent.order_id, func.min(OrderEvent.at).label("at"))
        .where(OrderEvent.status.in_(_LEFT_WAREHOUSE))
        .group_by(OrderEvent.order_id)
        .subquery()
    )
    shipped = (
        select(Reservation.sku, func.sum(Reservation.quantity).label("units"))
        .join(left, left.c.order_id == Reservation.order_id)
        .where(Reservation.state == "shipped", period.holds(left.c.at))
        .group_by(Reservation.sku)
        .subquery()
    )
    stock = (
        select(Stock.sku, func.sum(Stock.on_hand).label("on_hand")).group_by(Stock.sku).subquery()
    )
    units = func.coalesce(shipped.c.units, 0)
    on_hand = func.coalesce(stock.c.on_hand, 0)
    turnover = func.round(cast(units, Numeric) / func.nullif(on_hand, 0), 4)
    stmt = (
        select(Product.sku, Product.name, CATEGORY, units, on_hand, turnover)
        .outerjoin(shipped, shipped.c.sku == Product.sku)
        .outerjoin(stock, stock.c.sku == Product.sku)
        .where(shipped.c.sku.is_not(None) | stock.c.sku.is_not(None))
        .order_by(turnover.desc().nulls_last(), units.desc(), Product.sku)
        .limit(limit)
    )
    if category is not None:
        stmt = stmt.where(Product.category == category)
    return [
        Turnover(sku=sku, name=name, category=cat, units_shipped=u, on_hand=h, turnover=t)
        for sku, name, cat, u, h, t in await session.execute(stmt)
    ]
