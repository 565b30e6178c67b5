"""Low-stock alerts: a SKU below its safety stock opens one alert (and one staff email);
back above, the alert resolves. Checked wherever available units change."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.notifications import STAFF, Notification
from models.orders_repo import enqueue_notifications
from models.supply_tables import LowStockAlert
from models.tables import Product, Stock

OPEN = LowStockAlert.resolved_at.is_(None)


async def available_units(session: AsyncSession, skus: Iterable[str]) -> dict[str, int]:
    """On hand minus reserved, summed over every warehouse."""
    rows = await session.execute(
        select(Stock.sku, func.sum(Stock.on_hand - Stock.reserved))
        .where(Stock.sku.in_(list(skus)))
        .group_by(Stock.sku)
    )
    return {sku: int(n) for sku, n in rows}


async def check_low_stock(session: AsyncSession, skus: Iterable[str]) -> list[int]:
    """Open or resolve the alerts of these SKUs; returns the ids of alerts just opened."""
    wanted = sorted(set(skus))
    if not wanted:
        return []
    # Only SKUs with a safety stock are watched; for the rest this is one empty read.
    watched = dict(
        (
            await session.execute(
                select(Product.sku, Product.safety_stock).where(
                    Product.sku.in_(wanted), Product.safety_stock > 0
                )
            )
        ).all()
    )
    open_alerts = set(
        (
            await session.execute(
                select(LowStockAlert.sku).where(LowStockAlert.sku.in_(wanted), OPEN)
            )
        ).scalars()
    )
    have = await available_units(session, watched)
    opened: list[int] = []
    for sku in wanted:
        floor = watched.get(sku, 0)
        units = have.get(sku, 0)
        if floor and units < floor and sku not in open_alerts:
            message = f"{sku}: {units} available, below the safety stock of {floor}"
            new_id = (
                await session.execute(
                    insert(LowStockAlert)
                    .values(sku=sku, available=units, safety_stock=floor, message=message)
                    .on_conflict_do_nothing(
                        index_elements=[LowStockAlert.sku], index_where=text("resolved_at IS NULL")
                    )
                    .returning(LowStockAlert.id)
                )
            ).scalar()
            if new_id is not None:
                opened.append(new_id)
                await enqueue_notifications(
                    session,
                    [
                        Notification(
                            key=f"low-stock:{new_id}",
                            order_id="",
                            kind="low_stock",
                            to=STAFF,
                            subject=f"[orderflow] low stock: {sku}",
                            text=message + "\n\nSee GET /inventory/replenishment for a suggestion.",
                        )
                    ],
                )
        elif sku in open_alerts and (not floor or units >= floor):
            await session.execute(
                update(LowStockAlert)
                .where(LowStockAlert.sku == sku, OPEN)
                .values(resolved_at=func.now(), available=units)
            )
    return opened


async def low_stock_alerts(session: AsyncSession, open_only: bool = True) -> list[dict[str, Any]]:
    """Low-stock alerts, newest first."""
    stmt = select(LowStockAlert).order_by(LowStockAlert.created_at.desc(), LowStockAlert.id.desc())
    if open_only:
        stmt = stmt.where(OPEN)
    return [
        {
            "id": a.id,
            "sku": a.sku,
            "available": a.available,
            "safety_stock": a.safety_stock,
            "message": a.message,
            "created_at": a.created_at,
            "resolved_at": a.resolved_at,
        }
        for a in (await session.execute(stmt.limit(500))).scalars()
    ]
