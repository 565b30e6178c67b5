"""Inventory: stock levels, safety stock and low-stock alerts, replenishment, restocks (§7)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api import order_calls
from api.deps import SessionDep, SessionsDep, SettingsDep, TemporalDep
from api.errors import ApiError
from api.replenishing import todays_plan
from api.schemas import RestockBody
from api.supply_schemas import SafetyStockBody
from models import inventory_repo, stock_watch, supply_repo
from models.tables import Product, Warehouse
from workflows import contract as c

router = APIRouter(tags=["inventory"])


@router.get("/inventory/low-stock")
async def low_stock(
    session: SessionDep, include_resolved: Annotated[bool, Query(alias="all")] = False
) -> dict[str, Any]:
    """SKUs below their safety stock (newest first); `all=true` adds resolved alerts."""
    return {"items": await stock_watch.low_stock_alerts(session, open_only=not include_resolved)}


@router.get("/inventory/replenishment")
async def replenishment(
    session: SessionDep,
    settings: SettingsDep,
    sku: Annotated[list[str] | None, Query(max_length=200)] = None,
    window_days: Annotated[int | None, Query(ge=1, le=365)] = None,
    review_days: Annotated[int | None, Query(ge=0, le=365)] = None,
    due_only: bool = True,
) -> dict[str, Any]:
    """What to reorder now, per SKU, with the supplier and the reasoning spelled out.

    Demand is the moving average of units ordered per day over `window_days`; see each item's
    `explanation` for the figures.
    """
    window, review, plans = await todays_plan(session, settings, sku, window_days, review_days)
    return {
        "window_days": window,
        "review_days": review,
        "items": [_plan(p) for p in plans if p.suggestion.due or not due_only],
    }


def _plan(p: supply_repo.Plan) -> dict[str, Any]:
    s = p.suggestion
    return {
        "sku": s.sku,
        "quantity": s.quantity,
        "supplier_id": p.supplier_id,
        "unit_cost": p.unit_cost,
        "currency": p.currency,
        "lead_time_days": p.lead_time_days,
        "daily_demand": s.daily_demand,
        "reorder_point": s.reorder_point,
        "target": s.target,
        "position": s.position,
        "explanation": s.explanation,
    }


@router.get("/inventory/{sku}")
async def get_stock(sku: str, session: SessionDep) -> dict[str, Any]:
    """Units of one SKU per warehouse, its safety stock, and what is on order or owed."""
    product = await session.get(Product, sku)
    if product is None:
        raise ApiError(404, "sku_not_found", f"no SKU {sku}")
    position = (await supply_repo.positions(session, [sku]))[sku]
    return {
        "sku": sku,
        "warehouses": await inventory_repo.stock_levels(session, sku),
        "available": position.available,
        "safety_stock": product.safety_stock,
        "low": position.available < product.safety_stock,
        "on_order": position.on_order,
        "backordered": position.backordered,
    }


@router.put("/inventory/{sku}/safety-stock")
async def set_safety_stock(
    sku: Annotated[str, Path(max_length=64)], body: SafetyStockBody, sessions: SessionsDep
) -> dict[str, Any]:
    """Units below which staff are alerted; checked at once against what is available."""
    async with sessions.begin() as session:
        product = await session.get(Product, sku, with_for_update=True)
        if product is None:
            raise ApiError(404, "sku_not_found", f"no SKU {sku}")
        product.safety_stock = body.safety_stock
        await session.flush()
        await stock_watch.check_low_stock(session, [sku])
    async with sessions() as session:
        return await get_stock(sku, session)


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
