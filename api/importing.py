"""Importing orders from other channels: each order is created like any other (its channel's
order id makes a re-import a duplicate, not a second order) and runs as its own workflow."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.errors import ApiError
from api.intake import create_order
from api.schemas import OrderCreate
from models.order_import import ImportRow
from orderflow.settings import Settings


def _why(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'order'}: {err['msg']}"
        for err in exc.errors()[:5]
    )


async def import_orders(
    sessions: async_sessionmaker[AsyncSession],
    client: Client,
    settings: Settings,
    rows: list[ImportRow],
    actor: str,
) -> dict[str, Any]:
    """Create each order read from a file; a summary of what was created, repeated, refused."""
    orders: list[dict[str, Any]] = []
    rejections: list[dict[str, Any]] = []
    for row in rows:
        reason = row.error
        if not reason:
            try:
                body = OrderCreate.model_validate(row.order)
                view, created = await create_order(sessions, client, settings, body, None, actor)
            except ValidationError as exc:
                reason = _why(exc)
            except ApiError as exc:
                reason = f"{exc.code}: {exc.message}"
            else:
                orders.append(
                    {
                        "lines": row.lines,
                        "channel_order_id": body.channel_order_id,
                        "order_id": view.order_id,
                        "outcome": "created" if created else "duplicate",
                    }
                )
                continue
        rejections.append({"lines": row.lines, "reason": reason})
    return {
        "created": sum(1 for o in orders if o["outcome"] == "created"),
        "duplicates": sum(1 for o in orders if o["outcome"] == "duplicate"),
        "rejected": len(rejections),
        "orders": orders,
        "rejections": rejections,
    }
