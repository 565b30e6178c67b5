"""Customer reports (§8): repeat purchases and what customers choose, over the period's sales
(`models.reports.SALE_STATUSES`, by the day the order was placed)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.order import DeliveryOption
from models.reports import CATEGORY, Period, share, sold_in
from models.tables import Order, OrderLineRow, Product


class RepeatPurchases(BaseModel):
    """Customers with a sale in the period, and those among them with more than one."""

    customers: int
    repeat_customers: int
    orders: int
    rate: Decimal


class Preference(BaseModel):
    """How many of the period's sales chose `value`."""

    value: str
    orders: int
    share: Decimal
    units: int | None = None  # by category


class Preferences(BaseModel):
    """What customers chose, over the period's sales."""

    orders: int
    category: list[Preference]
    payment_method: list[Preference]
    delivery_option: list[Preference]
    ship_to_country: list[Preference]


async def repeat_purchases(session: AsyncSession, period: Period) -> RepeatPurchases:
    """Of the customers with at least one sale placed in the period, the share who placed two
    or more sales in that same period (orders before or after it do not count)."""
    per_customer = (
        select(Order.customer_id, func.count().label("n"))
        .where(sold_in(period))
        .group_by(Order.customer_id)
        .subquery()
    )
    n = per_customer.c.n
    customers, repeat, orders = (
        await session.execute(
            select(func.count(), func.count().filter(n > 1), func.coalesce(func.sum(n), 0))
        )
    ).one()
    return RepeatPurchases(
        customers=customers,
        repeat_customers=repeat,
        orders=orders,
        rate=share(repeat, customers),
    )


# Orders recorded before the option existed have none in their view: they were standard.
_DELIVERY_OPTION = func.coalesce(Order.view["delivery"].astext, DeliveryOption.STANDARD.value)


async def preferences(session: AsyncSession, period: Period) -> Preferences:
    """Over the period's sales: categories bought (orders with at least one line of the
    category, so shares may add up to more than one, and units), payment methods, delivery
    options and ship-to countries."""
    total = await session.scalar(select(func.count()).where(sold_in(period))) or 0
    orders = func.count(func.distinct(Order.order_id))
    categories = await session.execute(
        select(CATEGORY, orders, func.sum(OrderLineRow.quantity))
        .select_from(OrderLineRow)
        .join(Order, Order.order_id == OrderLineRow.order_id)
        .outerjoin(Product, Product.sku == OrderLineRow.sku)
        .where(sold_in(period))
        .group_by(CATEGORY)
        .order_by(orders.desc(), CATEGORY)
    )

    async def spread(choice: Any) -> list[Preference]:
        n = func.count()
        rows = await session.execute(
            select(choice, n).where(sold_in(period)).group_by(choice).order_by(n.desc(), choice)
        )
        return [Preference(value=v, orders=c, share=share(c, total)) for v, c in rows]

    return Preferences(
        orders=total,
        category=[
            Preference(value=v, orders=c, share=share(c, total), units=u) for v, c, u in categories
        ],
        payment_method=await spread(Order.view["payment_method"].astext),
        delivery_option=await spread(_DELIVERY_OPTION),
        ship_to_country=await spread(Order.view["ship_to"]["country"].astext),
    )
