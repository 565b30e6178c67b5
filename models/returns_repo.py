"""The returns read model, and putting returned goods back on the shelf once."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models import inventory_repo
from models.returns import ReturnView
from models.tables import Return


async def save_return(session: AsyncSession, view: ReturnView) -> None:
    """Upsert a return's current view."""
    values = {
        "return_id": view.return_id,
        "order_id": view.order_id,
        "status": view.status,
        "kind": view.kind,
        "view": view.model_dump(mode="json"),
        "created_at": view.created_at,
        "updated_at": view.updated_at,
    }
    stmt = insert(Return).values(**values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[Return.return_id],
            set_={k: stmt.excluded[k] for k in ("status", "view", "updated_at")},
            where=Return.updated_at <= stmt.excluded.updated_at,
        )
    )


async def load_return(session: AsyncSession, return_id: str) -> ReturnView | None:
    """A return as last recorded."""
    row = await session.get(Return, return_id)
    return ReturnView.model_validate(row.view) if row is not None else None


async def returns_of(session: AsyncSession, order_id: str) -> list[ReturnView]:
    """Every return of one order, oldest first."""
    rows = await session.execute(
        select(Return).where(Return.order_id == order_id).order_by(Return.created_at)
    )
    return [ReturnView.model_validate(r.view) for r in rows.scalars()]


async def restock_return(
    session: AsyncSession, return_id: str, warehouse_id: str, lines: Mapping[str, int]
) -> bool:
    """Put a return's goods back on hand; False when that was done already."""
    row = await session.get(Return, return_id, with_for_update=True)
    if row is None or row.restocked:
        return False
    for sku, qty in sorted(lines.items()):
        await inventory_repo.add_on_hand(session, sku, warehouse_id, qty)
    await session.execute(
        update(Return).where(Return.return_id == return_id).values(restocked=True)
    )
    return True
