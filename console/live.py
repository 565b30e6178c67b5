"""An order's page follows the order live: a stream of server-sent events that says when the
order's recorded view changed (by the carrier, the CLI, another tab), so the page fetches
itself again without a reload. It polls the read model, which every step writes, holding no
database connection between looks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.tables import Order

# How often the stream looks, and how long one stream lasts before the browser reconnects
# (EventSource does so by itself): no connection is held forever by a forgotten tab.
LOOK_EVERY = 1.0
LASTS = 300.0


async def _stamp(sessions: async_sessionmaker[AsyncSession], order_id: str) -> datetime | None:
    async with sessions() as session:
        return (
            await session.execute(select(Order.updated_at).where(Order.order_id == order_id))
        ).scalar_one_or_none()


def parse_stamp(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


async def changes(
    sessions: async_sessionmaker[AsyncSession], order_id: str, seen: datetime | None
) -> AsyncIterator[str]:
    """Server-sent events: `changed` each time the order's record moves on from `seen`."""
    loop = asyncio.get_running_loop()
    ends = loop.time() + LASTS
    last = seen
    yield "retry: 2000\n\n"
    while loop.time() < ends:
        stamp = await _stamp(sessions, order_id)
        if stamp is not None and stamp != last:
            last = stamp
            yield f"event: changed\ndata: {stamp.isoformat()}\n\n"
        else:
            # A comment line keeps proxies from closing an idle stream.
            yield ": idle\n\n"
        await asyncio.sleep(LOOK_EVERY)
