"""Stock reservations: atomic, declarative and idempotent, so no unit is ever oversold."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import Backorder, Reservation, Stock, Warehouse


@dataclass
class ReserveResult:
    """Either the warehouse now holding the order's units, or what is short."""

    ok: bool
    warehouse_id: str = ""
    shortages: list[dict[str, object]] = field(default_factory=list)


class _Short(Exception):
    pass


async def _warehouse_preference(session: AsyncSession, ship_country: str) -> list[str]:
    near_first = case((Warehouse.country == ship_country, 0), else_=1)
    rows = await session.execute(
        select(Warehouse.id).order_by(near_first, Warehouse.priority, Warehouse.id)
    )
    return list(rows.scalars())


async def _apply_delta(session: AsyncSession, warehouse_id: str, sku: str, delta: int) -> None:
    # The WHERE clause is the oversell guard: the row only changes if enough is available,
    # and the row lock it takes serialises concurrent reservations of the same SKU.
    stmt = (
        update(Stock)
        .where(Stock.sku == sku, Stock.warehouse_id == warehouse_id)
        .values(reserved=Stock.reserved + delta)
        .returning(Stock.sku)
    )
    if delta > 0:
        stmt = stmt.where(Stock.on_hand - Stock.reserved >= delta)
    if (await session.execute(stmt)).first() is None:
        raise _Short(sku)


async def _shortages(session: AsyncSession, wanted: Mapping[str, int]) -> list[dict[str, object]]:
    rows = await session.execute(
        select(Stock.sku, Stock.warehouse_id, (Stock.on_hand - Stock.reserved).label("free")).where(
            Stock.sku.in_(list(wanted))
        )
    )
    best: dict[str, int] = {}
    for sku, _wh, free in rows:
        best[sku] = max(best.get(sku, 0), int(free))
    return [
        {"sku": sku, "wanted": qty, "available": best.get(sku, 0)}
        for sku, qty in sorted(wanted.items())
        if best.get(sku, 0) < qty
    ]


async def set_reservation(
    session: AsyncSession,
    order_id: str,
    wanted: Mapping[str, int],
    ship_country: str = "",
    batch: int = 1,
) -> ReserveResult:
    """Make the order hold exactly `wanted` units, all from one warehouse, or change nothing.

    Declarative, so a retried call with the same target is a no-op; an empty target releases
    everything the order still holds.
    """
    # Two attempts for one order (a retry racing a slow first try) must not both add units.
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(order_id))))
    held_rows = (
        await session.execute(
            select(Reservation).where(Reservation.order_id == order_id, Reservation.state == "held")
        )
    ).scalars()
    held = {(r.warehouse_id, r.sku): r.quantity for r in held_rows}
    current = sorted({wh for wh, _ in held})

    preference = await _warehouse_preference(session, ship_country)
    candidates = current + [wh for wh in preference if wh not in current]
    if not wanted:
        candidates = candidates[:1] or [""]

    for warehouse_id in candidates:
        target = {(warehouse_id, sku): qty for sku, qty in wanted.items()}
        deltas = {k: target.get(k, 0) - held.get(k, 0) for k in set(target) | set(held)}
        try:
            async with session.begin_nested():
                # A fixed lock order (warehouse, SKU) keeps concurrent orders from deadlocking.
                for (wh, sku), delta in sorted(deltas.items()):
                    if delta:
                        await _apply_delta(session, wh, sku, delta)
        except _Short:
            continue
        await session.execute(
            delete(Reservation).where(Reservation.order_id == order_id, Reservation.state == "held")
        )
        if target:
            await session.execute(
                insert(Reservation).values(
                    [
                        {
                            "order_id": order_id,
                            "batch": batch,
                            "sku": sku,
                            "warehouse_id": wh,
                            "quantity": qty,
                        }
                        for (wh, sku), qty in target.items()
                    ]
                )
            )
        return ReserveResult(ok=True, warehouse_id=warehouse_id if target else "")
    return ReserveResult(ok=False, shortages=await _shortages(session, wanted))


async def ship_reservation(session: AsyncSession, order_id: str, batch: int = 1) -> int:
    """Turn the order's held units into shipped ones: they leave on-hand stock. Idempotent."""
    rows = (
        await session.execute(
            select(Reservation)
            .where(
                Reservation.order_id == order_id,
                Reservation.batch == batch,
                Reservation.state == "held",
            )
            .order_by(Reservation.warehouse_id, Reservation.sku)
            .with_for_update()
        )
    ).scalars()
    shipped = 0
    for r in rows:
        await session.execute(
            update(Stock)
            .where(Stock.sku == r.sku, Stock.warehouse_id == r.warehouse_id)
            .values(on_hand=Stock.on_hand - r.quantity, reserved=Stock.reserved - r.quantity)
        )
        r.state = "shipped"
        shipped += r.quantity
    return shipped


async def stock_levels(session: AsyncSession, sku: str) -> list[dict[str, object]]:
    """On-hand, reserved and available units of one SKU per warehouse."""
    rows = await session.execute(
        select(Stock.warehouse_id, Stock.on_hand, Stock.reserved)
        .where(Stock.sku == sku)
        .order_by(Stock.warehouse_id)
    )
    return [
        {"warehouse": wh, "on_hand": on, "reserved": res, "available": on - res}
        for wh, on, res in rows
    ]


async def held_quantity(session: AsyncSession, order_id: str) -> int:
    """Units the order still holds (not shipped, not released)."""
    total = await session.scalar(
        select(func.coalesce(func.sum(Reservation.quantity), 0)).where(
            Reservation.order_id == order_id, Reservation.state == "held"
        )
    )
    return int(total or 0)


async def add_backorder(
    session: AsyncSession, order_id: str, wanted: Mapping[str, int], ship_country: str
) -> None:
    """Queue the order for stock (or update what it waits for); its place in line stays."""
    stmt = insert(Backorder).values(
        order_id=order_id, wanted=dict(wanted), ship_country=ship_country, status="waiting"
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[Backorder.order_id],
            set_={"wanted": dict(wanted), "ship_country": ship_country, "status": "waiting"},
        )
    )


async def close_backorder(session: AsyncSession, order_id: str) -> None:
    """The order no longer waits for stock (served, edited, or cancelled)."""
    await session.execute(
        update(Backorder).where(Backorder.order_id == order_id).values(status="closed")
    )


async def restock(session: AsyncSession, sku: str, warehouse_id: str, quantity: int) -> list[str]:
    """Add units, then serve waiting backorders first come, first served.

    Returns the orders that now hold all they wait for; their workflows must be told.
    """
    stmt = insert(Stock).values(sku=sku, warehouse_id=warehouse_id, on_hand=quantity, reserved=0)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[Stock.sku, Stock.warehouse_id],
            set_={"on_hand": Stock.on_hand + quantity},
        )
    )
    waiting = (
        await session.execute(
            select(Backorder)
            .where(Backorder.status == "waiting")
            .order_by(Backorder.created_at, Backorder.order_id)
            .with_for_update(skip_locked=True)
        )
    ).scalars()
    served = []
    for b in waiting:
        result = await set_reservation(session, b.order_id, b.wanted, b.ship_country)
        if result.ok:
            b.status = "allocated"
            served.append(b.order_id)
    return served
