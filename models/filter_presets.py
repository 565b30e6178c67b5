"""Saved order filters: a name staff give a search, shared by every staff member."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String, delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from models.tables import Base, _now

NAME_LENGTH = 80
QUERY_LENGTH = 1000


class FilterPreset(Base):
    """One named search of the orders list, as its query string."""

    __tablename__ = "filter_presets"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    query: Mapped[str] = mapped_column(String(QUERY_LENGTH))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = _now()


async def save(session: AsyncSession, name: str, query: str, actor: str) -> None:
    """Keep `query` under `name`; a name saved again points at the new query."""
    stmt = insert(FilterPreset).values(
        name=name[:NAME_LENGTH], query=query[:QUERY_LENGTH], created_by=actor[:100]
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[FilterPreset.name],
            set_={"query": stmt.excluded.query, "created_by": stmt.excluded.created_by},
        )
    )


async def all_presets(session: AsyncSession) -> list[FilterPreset]:
    """Every saved filter, by name."""
    return list((await session.execute(select(FilterPreset).order_by(FilterPreset.name))).scalars())


async def remove(session: AsyncSession, preset_id: int) -> None:
    await session.execute(delete(FilterPreset).where(FilterPreset.id == preset_id))
