"""Sales reports (§8): sales by day, week, product, category and channel; best and slow
sellers; products bought together.

Only sales count (`models.reports.SALE_STATUSES`), by the day the order was placed; an exchange
order paid wholly by the credit of goods sent back is no sale (their sale was the first order).
Money is summed per currency, never across currencies. `order_total` is what the customers
paid and kept paying: each order's total (an exchange order's after its credit) less what was
refunded. `revenue` is the goods at the price charged (the lines' totals, before the order's
discount, shipping and tax), each line taking the share of its order paid in money and not
refunded, so it adds up the same whichever way it is broken down.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Numeric, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from models.order import PaymentMethod
from models.reports import CATEGORY, Period, sold_in
from models.tables import Order, OrderLineRow, Product

SALES_BY = ("day", "week", "product", "category", "channel")

_PLACED_UTC = func.timezone("UTC", Order.created_at)
# Groupings of whole orders; the others group lines.
_ORDER_KEYS: dict[str, Any] = {
    "day": func.to_char(_PLACED_UTC, "YYYY-MM-DD"),
    "week": func.to_char(_PLACED_UTC, 'IYYY-"W"IW'),
    "channel": Order.channel,
}


def _amount(path: Any) -> ColumnElement[Any]:
    """A money amount inside the stored view; views written before it existed hold none."""
    return func.coalesce(cast(path.astext, Numeric), 0)


_REFUNDED = _amount(Order.view["books"]["refunded"])
_CREDIT = _amount(Order.view["totals"]["credit"])
_PAID_BY_CREDIT = Order.view["payment_method"].astext == PaymentMethod.EXCHANGE_CREDIT.value
# What the order brought in, and the share of its goods that it stands for.
_NET = Order.total - _REFUNDED
_NET_SHARE = func.coalesce(_NET / func.nullif(Order.total + _CREDIT, 0), 1)


def _sold(period: Period) -> ColumnElement[bool]:
    """SQL: a sale placed in the period, not paid for by exchange credit alone."""
    return sold_in(period) & ~_PAID_BY_CREDIT


def _cents(amount: Any) -> Any:
    return func.round(amount, 2)


class SalesRow(BaseModel):
    """One group of sales in one currency."""

    key: str  # the day (YYYY-MM-DD), ISO week (YYYY-Www), SKU, category or channel
    name: str | None = None  # the product's name, by product
    currency: str
    orders: int
    units: int
    revenue: Decimal
    order_total: Decimal | None = None  # by day, week and channel


class SellerRow(BaseModel):
    """A product and how much of it sold."""

    sku: str
    name: str
    category: str
    units: int
    orders: int


class PairRow(BaseModel):
    """Two products in the same orders; `first` sorts before `second`."""

    first: str
    first_name: str
    second: str
    second_name: str
    orders: int


async def sales_by(session: AsyncSession, period: Period, by: str) -> list[SalesRow]:
    """Orders, units and revenue per `by` (one of SALES_BY) and currency.

    Days and weeks come in time order; products, categories and channels by revenue.
    """
    if by not in SALES_BY:
        raise ValueError(f"sales are grouped by one of {', '.join(SALES_BY)}, not {by!r}")
    if by in _ORDER_KEYS:
        return await _sales_by_order(session, period, by)
    return await _sales_by_line(session, period, by)


async def _sales_by_order(session: AsyncSession, period: Period, by: str) -> list[SalesRow]:
    # Lines are summed per order first, so each order's total is counted once.
    per_order = (
        select(
            _ORDER_KEYS[by].label("key"),
            Order.currency,
            _NET.label("net"),
            func.sum(OrderLineRow.quantity).label("units"),
            (func.coalesce(func.sum(OrderLineRow.line_total), 0) * _NET_SHARE).label("goods"),
        )
        .join(OrderLineRow, OrderLineRow.order_id == Order.order_id)
        .where(_sold(period))
        .group_by(Order.order_id)
        .subquery()
    )
    o = per_order.c
    stmt = (
        select(
            o.key,
            o.currency,
            func.count(),
            func.sum(o.units),
            _cents(func.sum(o.goods)),
            func.sum(o.net),
        )
        .group_by(o.key, o.currency)
        .order_by(o.key, o.currency)
    )
    return [
        SalesRow(key=k, currency=cur, orders=n, units=units, revenue=goods, order_total=total)
        for k, cur, n, units, goods, total in await session.execute(stmt)
    ]


async def _sales_by_line(session: AsyncSession, period: Period, by: str) -> list[SalesRow]:
    by_product = by == "product"
    key: Any = OrderLineRow.sku if by_product else CATEGORY
    revenue = _cents(func.coalesce(func.sum(OrderLineRow.line_total * _NET_SHARE), 0))
    stmt = (
        select(
            key,
            Order.currency,
            func.count(func.distinct(Order.order_id)),
            func.sum(OrderLineRow.quantity),
            revenue,
            func.max(Product.name),
        )
        .select_from(OrderLineRow)
        .join(Order, Order.order_id == OrderLineRow.order_id)
        .outerjoin(Product, Product.sku == OrderLineRow.sku)
        .where(_sold(period))
        .group_by(key, Order.currency)
        .order_by(revenue.desc(), key, Order.currency)
    )
    return [
        SalesRow(
            key=k,
            name=(name or "") if by_product else None,
            currency=cur,
            orders=n,
            units=units,
            revenue=rev,
        )
        for k, cur, n, units, rev, name in await session.execute(stmt)
    ]


def _units_sold(period: Period) -> Any:
    return (
        select(
            OrderLineRow.sku,
            func.sum(OrderLineRow.quantity).label("units"),
            func.count(func.distinct(OrderLineRow.order_id)).label("orders"),
        )
        .join(Order, Order.order_id == OrderLineRow.order_id)
        .where(_sold(period))
        .group_by(OrderLineRow.sku)
        .subquery()
    )


async def best_sellers(
    session: AsyncSession, period: Period, limit: int, category: str | None = None
) -> list[SellerRow]:
    """The `limit` products that sold the most units (ties by SKU)."""
    sold = _units_sold(period)
    stmt = (
        select(
            sold.c.sku,
            func.coalesce(Product.name, ""),
            CATEGORY,
            sold.c.units,
            sold.c.orders,
        )
        .select_from(sold)
        .outerjoin(Product, Product.sku == sold.c.sku)
        .order_by(sold.c.units.desc(), sold.c.sku)
        .limit(limit)
    )
    if category is not None:
        stmt = stmt.where(Product.category == category)
    return _sellers(await session.execute(stmt))


async def slow_sellers(
    session: AsyncSession, period: Period, limit: int, category: str | None = None
) -> list[SellerRow]:
    """The `limit` products for sale that sold the fewest units, those that sold none first."""
    sold = _units_sold(period)
    units = func.coalesce(sold.c.units, 0)
    stmt = (
        select(Product.sku, Product.name, CATEGORY, units, func.coalesce(sold.c.orders, 0))
        .outerjoin(sold, sold.c.sku == Product.sku)
        .where(Product.active)
        .order_by(units, Product.sku)
        .limit(limit)
    )
    if category is not None:
        stmt = stmt.where(Product.category == category)
    return _sellers(await session.execute(stmt))


def _sellers(rows: Any) -> list[SellerRow]:
    return [
        SellerRow(sku=sku, name=name, category=cat, units=units, orders=orders)
        for sku, name, cat, units, orders in rows
    ]


async def bought_together(session: AsyncSession, period: Period, limit: int) -> list[PairRow]:
    """The `limit` pairs of SKUs found together in the most sales (ties by SKU)."""
    a, b = aliased(OrderLineRow), aliased(OrderLineRow)
    pa, pb = aliased(Product), aliased(Product)
    n = func.count()
    stmt = (
        select(a.sku, func.max(pa.name), b.sku, func.max(pb.name), n)
        .select_from(a)
        .join(b, (b.order_id == a.order_id) & (a.sku < b.sku))
        .join(Order, Order.order_id == a.order_id)
        .outerjoin(pa, pa.sku == a.sku)
        .outerjoin(pb, pb.sku == b.sku)
        .where(_sold(period))
        .group_by(a.sku, b.sku)
        .order_by(n.desc(), a.sku, b.sku)
        .limit(limit)
    )
    return [
        PairRow(first=x, first_name=xn or "", second=y, second_name=yn or "", orders=count)
        for x, xn, y, yn, count in await session.execute(stmt)
    ]
