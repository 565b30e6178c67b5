"""Stock reservations: atomic, declarative and idempotent, so no unit is ever oversold."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.allocation import Allocation, WarehouseInfo, allocate, allocate_fixed
from models.stock_watch import check_low_stock
from models.tables import Backorder, Reservation, Stock, Warehouse


@dataclass
class ReserveResult:
    """The parcels now held for the order, or what is short.

    `ok` means every wanted unit is held; a partial allocation holds `parcels` and lists the
    rest in `shortages`.
    """

    ok: bool
    warehouse_id: str = ""
    shortages: list[dict[str, object]] = field(default_factory=list)
    parcels: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


class _Short(Exception):
    pass


# A concurrent order may take the units between reading and writing; read again this often.
MAX_ATTEMPTS = 20


async def warehouses(session: AsyncSession) -> list[WarehouseInfo]:
    """Every warehouse with what allocation ranks it by."""
    rows = await session.execute(select(Warehouse.id, Warehouse.country, Warehouse.priority))
    return [WarehouseInfo(wh, country, priority) for wh, country, priority in rows]


async def _free_stock(
    session: AsyncSession, skus: list[str], held: Mapping[tuple[str, str], int]
) -> dict[str, dict[str, int]]:
    rows = await session.execute(
        select(Stock.warehouse_id, Stock.sku, (Stock.on_hand - Stock.reserved)).where(
            Stock.sku.in_(skus)
        )
    )
    free: dict[str, dict[str, int]] = {}
    for wh, sku, n in rows:
        # Units this order holds already count as free for it: re-allocating keeps them.
        free.setdefault(wh, {})[sku] = int(n) + held.get((wh, sku), 0)
    return free


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


def _shortages(wanted: Mapping[str, int], short: Mapping[str, int]) -> list[dict[str, object]]:
    return [
        {"sku": sku, "wanted": wanted[sku], "available": wanted[sku] - n}
        for sku, n in sorted(short.items())
    ]


async def set_reservation(
    session: AsyncSession,
    order_id: str,
    wanted: Mapping[str, int],
    ship_country: str = "",
    batch: int = 1,
    *,
    split: bool = False,
    partial: bool = False,
    strategy: str = "fewest_shipments",
    fixed: Sequence[tuple[str | None, Mapping[str, int]]] | None = None,
) -> ReserveResult:
    """Make the order hold exactly `wanted` units, allocated by `strategy`, or change nothing.

    Without `split` all units come from one warehouse; `fixed` gives the parcels by hand
    (each with its warehouse, or None for the best one that can ship it). Parcels are numbered
    from `batch`; parcels numbered below it (an earlier part of the order) are left as they are.
    Declarative, so a retried call with the same target is a no-op; an empty target releases
    everything the order still holds.
    """
    # Two attempts for one order (a retry racing a slow first try) must not both add units.
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(order_id))))
    held_rows = (
        await session.execute(
            select(Reservation).where(
                Reservation.order_id == order_id,
                Reservation.state == "held",
                Reservation.batch >= batch,
            )
        )
    ).scalars()
    held = {(r.warehouse_id, r.sku): r.quantity for r in held_rows}
    current = sorted({wh for wh, _ in held})
    known = await warehouses(session)

    for _ in range(MAX_ATTEMPTS):
        if wanted:
            free = await _free_stock(session, list(wanted), held)
            found = (
                allocate_fixed(fixed, free, known, ship_country, current)
                if fixed is not None
                else allocate(
                    wanted,
                    free,
                    known,
                    ship_country,
                    strategy=strategy,
                    split=split,
                    partial=partial,
                    current=current,
                )
            )
            if not found.parcels:
                return ReserveResult(ok=False, shortages=_shortages(wanted, found.short))
        else:
            found = Allocation()
        target = {(p.warehouse_id, sku): q for p in found.parcels for sku, q in p.lines.items()}
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
            delete(Reservation).where(
                Reservation.order_id == order_id,
                Reservation.state == "held",
                Reservation.batch >= batch,
            )
        )
        rows = [
            {
                "order_id": order_id,
                "batch": batch + i,
                "sku": sku,
                "warehouse_id": p.warehouse_id,
                "quantity": qty,
            }
            for i, p in enumerate(found.parcels)
            for sku, qty in p.lines.items()
        ]
        if rows:
            await session.execute(insert(Reservation).values(rows))
        await check_low_stock(session, {sku for (_, sku), delta in deltas.items() if delta})
        return ReserveResult(
            ok=not found.short,
            warehouse_id=found.parcels[0].warehouse_id if found.parcels else "",
            shortages=_shortages(wanted, found.short),
            parcels=[
                {"warehouse_id": p.warehouse_id, "batch": batch + i, "lines": p.lines}
                for i, p in enumerate(found.parcels)
            ],
            reasons=found.reasons,
        )
    return ReserveResult(ok=False, shortages=_shortages(wanted, dict(wanted)))


async def _held_batch(session: AsyncSession, order_id: str, batch: int) -> list[Reservation]:
    # Locked in (warehouse, SKU) order, the same order reservations take their stock locks in.
    rows = await session.execute(
        select(Reservation)
        .where(
            Reservation.order_id == order_id,
            Reservation.batch == batch,
            Reservation.state == "held",
        )
        .order_by(Reservation.warehouse_id, Reservation.sku)
        .with_for_update()
    )
    return list(rows.scalars())


async def ship_reservation(session: AsyncSession, order_id: str, batch: int = 1) -> int:
    """Turn the order's held units into shipped ones: they leave on-hand stock. Idempotent."""
    shipped = 0
    for r in await _held_batch(session, order_id, batch):
        await session.execute(
            update(Stock)
            .where(Stock.sku == r.sku, Stock.warehouse_id == r.warehouse_id)
            .values(on_hand=Stock.on_hand - r.quantity, reserved=Stock.reserved - r.quantity)
        )
        r.state = "shipped"
        r.updated_at = func.now()
        shipped += r.quantity
    return shipped


async def release_batch(session: AsyncSession, order_id: str, batch: int) -> int:
    """Give back the units one parcel of the order still holds. Idempotent."""
    released = 0
    held = await _held_batch(session, order_id, batch)
    for r in held:
        await _apply_delta(session, r.warehouse_id, r.sku, -r.quantity)
        await session.delete(r)
        released += r.quantity
    await check_low_stock(session, {r.sku for r in held})
    return released


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
    session: AsyncSession,
    order_id: str,
    wanted: Mapping[str, int],
    ship_country: str,
    batch: int = 1,
    split: bool = False,
) -> None:
    """Queue the order for stock (or update what it waits for); its place in line stays.

    `batch` is the first parcel number the restock fills; `split` lets it fill from several
    warehouses.
    """
    values = {
        "wanted": dict(wanted),
        "ship_country": ship_country,
        "status": "waiting",
        "batch": batch,
        "split": split,
    }
    stmt = insert(Backorder).values(order_id=order_id, **values)
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[Backorder.order_id], set_=values)
    )


async def close_backorder(session: AsyncSession, order_id: str) -> None:
    """The order no longer waits for stock (served, edited, or cancelled)."""
    await session.execute(
        update(Backorder).where(Backorder.order_id == order_id).values(status="closed")
    )


async def restock(
    session: AsyncSession,
    sku: str,
    warehouse_id: str,
    quantity: int,
    strategy: str = "fewest_shipments",
) -> list[str]:
    """Add units, then serve waiting backorders first come, first served.

    Returns the orders that now hold all they wait for; their workflows must be told.
    """
    await add_on_hand(session, sku, warehouse_id, quantity)
    return await serve_backorders(session, strategy)


async def add_on_hand(session: AsyncSession, sku: str, warehouse_id: str, quantity: int) -> None:
    """Units arrived on the shelf (a delivery, a return)."""
    stmt = insert(Stock).values(sku=sku, warehouse_id=warehouse_id, on_hand=quantity, reserved=0)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[Stock.sku, Stock.warehouse_id],
            set_={"on_hand": Stock.on_hand + quantity},
        )
    )
    await check_low_stock(session, [sku])


async def serve_backorders(session: AsyncSession, strategy: str = "fewest_shipments") -> list[str]:
    """Hold stock for waiting backorders, first come, first served; returns those now served."""
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
        result = await set_reservation(
            session,
            b.order_id,
            b.wanted,
            b.ship_country,
            b.batch,
            split=b.split,
            strategy=strategy,
        )
        if result.ok:
            b.status = "allocated"
            served.append(b.order_id)
    return served
