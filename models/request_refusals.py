"""Changes the API refused for an existing order before they reached its workflow (a body that
does not validate, a finished order, a currency that is not the order's). The workflow keeps
the refusals it makes itself; these join them in the order's history as staff read it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, Text, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from models.order import HistoryEntry
from models.status import OrderStatus
from models.tables import Base, _now

KIND = "request_refused"


class RequestRefusal(Base):
    """One refused request about one order: who sent what, and why it was refused."""

    __tablename__ = "order_request_refusals"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    at: Mapped[datetime] = _now()
    actor: Mapped[str] = mapped_column(String(100))
    request: Mapped[str] = mapped_column(String(200))
    status_code: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(60))
    message: Mapped[str] = mapped_column(Text, default="")
    # What the order was when the request came: the history shows every entry with it.
    order_status: Mapped[str] = mapped_column(String(24))


async def record(
    session: AsyncSession,
    order_id: str,
    order_status: str,
    actor: str,
    request: str,
    status_code: int,
    code: str,
    message: str,
) -> None:
    """Keep one refusal; the caller commits."""
    session.add(
        RequestRefusal(
            order_id=order_id,
            order_status=order_status,
            actor=actor[:100],
            request=request[:200],
            status_code=status_code,
            code=code[:60],
            message=message[:2000],
        )
    )


async def history_of(session: AsyncSession, order_id: str) -> list[HistoryEntry]:
    """The order's refused requests as history entries (seq 0: they are not the workflow's)."""
    rows = (
        await session.execute(
            select(RequestRefusal)
            .where(RequestRefusal.order_id == order_id)
            .order_by(RequestRefusal.at, RequestRefusal.id)
        )
    ).scalars()
    return [
        HistoryEntry(
            seq=0,
            at=r.at,
            kind=KIND,
            actor=r.actor,
            status=OrderStatus(r.order_status),
            detail=f"{r.request}: {r.status_code} {r.code}: {r.message}",
        )
        for r in rows
    ]
