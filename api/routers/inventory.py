"""Inventory: stock levels, and restocks that wake backordered orders (§2.2, §7)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from api import order_calls
from api.deps import SessionDep, SessionsDep, SettingsDep, TemporalDep
from api.errors import ApiError
from api.schemas import RestockBody
from models import inventory_repo
from models.tables import Product, Warehouse
from workflows import contract as c

router = APIRouter(tags=["inventory"])


@router.get("/inventory/{sku}")
async def get_stock(sku: str, session: SessionDep) -> dict[str, Any]:
    """On-hand, reserved and available units of one SKU per warehouse."""
    if await session.get(Product, sku) is None:
        raise ApiError(404, "sku_not_found", f"no SKU {sku}")
    return {"sku": sku, "warehouses": await inventory_repo.stock_levels(session, sku)}


@router.post("/inventory/restock")
async def restock(
    body: RestockBody, sessions: SessionsDep, client: TemporalDep, settings: SettingsDep
) -> dict[str, Any]:
    """Add units; waiting backorders are served first come, first served, then told."""
    async with sessions.begin() as session:
        if await session.get(Product, body.sku) is None:
            raise ApiError(422, "unknown_sku", f"no SKU {body.sku}")
        if await session.get(Warehouse, body.warehouse_id) is None:
            raise ApiError(422, "unknown_warehouse", f"no warehouse {body.warehouse_id}")
        served = await inventory_repo.restock(
            session, body.sku, body.warehouse_id, body.quantity, settings.allocation_strategy
        )
    # After the commit: the units are held for these orders whether or not this reaches them;
    # a backordered order also re-checks on its own timer.
    await asyncio.gather(
        *(order_calls.send_signal(client, oid, c.SIGNAL_STOCK_ALLOCATED, None) for oid in served)
    )
    async with sessions() as session:
        levels = await inventory_repo.stock_levels(session, body.sku)
    return {"sku": body.sku, "warehouses": levels, "backorders_served": served}
