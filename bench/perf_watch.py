"""Watching orders reach a status in the read model, the view every client sees."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from dataclasses import dataclass, field

import psycopg

from orderflow.db import libpq_url

# Statuses an order can end in, so a wait for COMPLETED does not hang on a failed order.
ENDED = frozenset({"COMPLETED", "CANCELLED", "FAILED", "REFUNDED"})
# Once stock is decided: waiting for it, or holding it (and past payment).
STOCK_DECIDED = frozenset(
    {
        "BACKORDERED",
        "CONFIRMED",
        "PICKING",
        "PACKED",
        "SHIPPED",
        "PARTIALLY_SHIPPED",
        "DELIVERED",
        *ENDED,
    }
)
# Give up when no order moved for this long: something is stuck, and the run reports it.
STALL_SECONDS = 180.0


@dataclass
class Arrivals:
    """When (monotonic) each order was first seen in a wanted status, and where the rest are."""

    at: dict[str, float] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)

    def missing(self, ids: Collection[str]) -> list[str]:
        return [i for i in ids if i not in self.at]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.status.values():
            out[s] = out.get(s, 0) + 1
        return out


class ReadModel:
    """One connection to the read model, for the run's own status queries."""

    def __init__(self, database_url: str) -> None:
        self.url = libpq_url(database_url)
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None

    async def __aenter__(self) -> ReadModel:
        self._conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._conn is not None:
            await self._conn.close()

    async def rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        assert self._conn is not None
        cur = await self._conn.execute(sql, params)
        return await cur.fetchall()

    async def statuses(self, ids: Collection[str]) -> dict[str, str]:
        rows = await self.rows(
            "select order_id, status from orders where order_id = any(%s)", (list(ids),)
        )
        return {str(oid): str(st) for oid, st in rows}

    async def wait(
        self,
        feed: Feed,
        wanted: Collection[str],
        within: float,
        also_done: Collection[str] = ENDED,
    ) -> Arrivals:
        """Poll until every order of the (closed) feed is in `wanted` or has ended otherwise,
        `within` seconds pass, or nothing moved for STALL_SECONDS. Orders are watched from the
        moment they are fed, so early ones are timed while later ones are still being placed;
        the poll interval bounds the timing error. `within` counts from the feed's closing."""
        arrivals = Arrivals()
        pending: set[str] = set()
        taken = 0
        deadline = time.monotonic() + within
        moved = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - moved < STALL_SECONDS:
            pending.update(feed.ids[taken:])
            taken = len(feed.ids)
            if feed.closed and not pending and taken == len(feed.ids):
                break
            now = time.monotonic()
            seen = await self.statuses(pending) if pending else {}
            for oid, status in seen.items():
                if arrivals.status.get(oid) != status:
                    moved = now
                arrivals.status[oid] = status
                if status in wanted:
                    arrivals.at[oid] = now
                    pending.discard(oid)
                elif status in also_done:
                    pending.discard(oid)
            if not feed.closed:
                # Placing many orders may take longer than any wait: time both from its end.
                moved = now
                deadline = now + within
            await asyncio.sleep(0.1 if len(pending) < 2000 else 0.5)
        return arrivals


@dataclass
class Feed:
    """Order numbers handed to a watcher as they are accepted; closed once all are placed."""

    ids: list[str] = field(default_factory=list)
    closed: bool = False

    @classmethod
    def of(cls, ids: Collection[str]) -> Feed:
        return cls(list(ids), closed=True)
