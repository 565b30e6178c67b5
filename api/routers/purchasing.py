"""Suppliers and purchase orders: goods ordered, confirmed, received (§7)."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api import order_calls
from api.auth import ActorDep
from api.deps import SessionDep, SessionsDep, SettingsDep, TemporalDep
from api.errors import ApiError, error_responses
from api.idempotency import caller_request_key, request_key
from api.replenishing import todays_plan
from api.supply_schemas import (
    GoodsReceipt,
    PurchaseOrderCancel,
    PurchaseOrderConfirm,
    PurchaseOrderCreate,
    ReplenishmentOrder,
    SkuUnits,
    SupplierBody,
)
from models import supply_repo
from models.order_number import make_order_number
from models.purchasing import PoLine, PoStatus, PurchaseOrderView, SupplierRef, total_cost
from models.supply_tables import Supplier
from models.tables import Product, Warehouse
from orderflow.settings import Settings
from workflows import purchase_contract as pc

router = APIRouter(tags=["purchasing"])

SupplierId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
PoId = Annotated[str, Path(min_length=1, max_length=40)]
# The caller's Idempotency-Key made its own (api/idempotency.py): callers never share one.
IdempotencyKey = Annotated[str | None, Depends(caller_request_key)]


@router.put("/suppliers/{supplier_id}")
async def put_supplier(
    supplier_id: SupplierId, body: SupplierBody, sessions: SessionsDep
) -> dict[str, Any]:
    """Create or replace a supplier with the SKUs it sells (cost, pack size, preferred)."""
    async with sessions.begin() as session:
        skus = [p.sku for p in body.products]
        unknown = sorted(set(skus) - await _known_skus(session, skus))
        if unknown:
            raise ApiError(422, "unknown_sku", f"no such SKU: {', '.join(unknown)}")
        await supply_repo.save_supplier(
            session,
            {"id": supplier_id, **body.model_dump(exclude={"products"})},
            [p.model_dump() for p in body.products],
        )
    async with sessions() as session:
        return await _supplier(session, supplier_id)


@router.get("/suppliers")
async def list_suppliers(session: SessionDep) -> dict[str, Any]:
    return {"items": await supply_repo.list_suppliers(session)}


@router.get("/suppliers/{supplier_id}")
async def get_supplier(supplier_id: SupplierId, session: SessionDep) -> dict[str, Any]:
    return await _supplier(session, supplier_id)


async def _supplier(session: AsyncSession, supplier_id: str) -> dict[str, Any]:
    found = await supply_repo.get_supplier(session, supplier_id)
    if found is None:
        raise ApiError(404, "supplier_not_found", f"no supplier {supplier_id}")
    return found


async def _known_skus(session: AsyncSession, skus: list[str]) -> set[str]:
    return set((await session.execute(select(Product.sku).where(Product.sku.in_(skus)))).scalars())


# --- purchase orders ------------------------------------------------------------------------


@router.post("/purchase-orders", status_code=201, response_model=PurchaseOrderView)
async def create_purchase_order(
    body: PurchaseOrderCreate,
    sessions: SessionsDep,
    client: TemporalDep,
    settings: SettingsDep,
    actor: ActorDep,
    idempotency_key: IdempotencyKey = None,
) -> PurchaseOrderView:
    """Order goods from a supplier; the workflow emails it and waits for the goods.

    With an Idempotency-Key a retry returns the same purchase order.
    """
    return await _place(sessions, client, settings, actor, body, idempotency_key)


@router.post("/purchase-orders/from-replenishment", status_code=201)
async def order_replenishment(
    body: ReplenishmentOrder,
    sessions: SessionsDep,
    client: TemporalDep,
    settings: SettingsDep,
    actor: ActorDep,
) -> dict[str, Any]:
    """Turn what `GET /inventory/replenishment` suggests into one purchase order per supplier.

    Calling it again orders nothing twice: units on order count in each SKU's position.
    """
    async with sessions() as session:
        _, _, plans = await todays_plan(
            session, settings, body.skus, body.window_days, body.review_days
        )
    wanted: dict[str, list[SkuUnits]] = {}
    for plan in plans:
        if plan.suggestion.due and plan.supplier_id is not None:
            wanted.setdefault(plan.supplier_id, []).append(
                SkuUnits(sku=plan.suggestion.sku, quantity=plan.suggestion.quantity)
            )
    created = [
        await _place(
            sessions,
            client,
            settings,
            actor,
            PurchaseOrderCreate(supplier_id=supplier, warehouse_id=body.warehouse_id, lines=lines),
            None,
        )
        for supplier, lines in sorted(wanted.items())
    ]
    return {
        "purchase_orders": created,
        "without_supplier": [
            p.suggestion.sku for p in plans if p.suggestion.due and p.supplier_id is None
        ],
    }


async def _place(
    sessions: async_sessionmaker[AsyncSession],
    client: Client,
    settings: Settings,
    actor: str,
    body: PurchaseOrderCreate,
    idempotency_key: str | None,
) -> PurchaseOrderView:
    async with sessions.begin() as session:
        view = await _new_purchase_order(session, body)
        po_id = await supply_repo.claim_purchase_order(session, view, idempotency_key)
        if po_id != view.po_id:
            stored = await supply_repo.get_purchase_order(session, po_id)
            assert stored is not None
            view = stored
    await order_calls.start_purchase_order(
        client,
        settings.task_queue,
        pc.PurchaseOrderInput(view=view, actor=actor, policy=_policy(settings)),
    )
    return await order_calls.query_purchase_order(client, view.po_id) or view


def _policy(settings: Settings) -> pc.PurchasePolicy:
    return pc.PurchasePolicy(
        confirm_reminder_seconds=settings.po_confirm_reminder_seconds,
        allocation_strategy=settings.allocation_strategy,
    )


async def _new_purchase_order(
    session: AsyncSession, body: PurchaseOrderCreate
) -> PurchaseOrderView:
    supplier = await session.get(Supplier, body.supplier_id)
    if supplier is None or not supplier.active:
        raise ApiError(422, "unknown_supplier", f"no active supplier {body.supplier_id}")
    if await session.get(Warehouse, body.warehouse_id) is None:
        raise ApiError(422, "unknown_warehouse", f"no warehouse {body.warehouse_id}")
    skus = [ln.sku for ln in body.lines]
    offers = await supply_repo.supplier_offers(session, supplier.id, skus)
    missing = [sku for sku in skus if sku not in offers]
    if missing:
        raise ApiError(
            422, "not_supplied", f"{supplier.id} does not sell: {', '.join(sorted(missing))}"
        )
    currencies = {offers[sku].currency for sku in skus}
    if len(currencies) != 1:
        raise ApiError(
            422, "mixed_currencies", f"one purchase order, one currency: {sorted(currencies)}"
        )
    names = {p.sku: p.name for p in [await session.get(Product, sku) for sku in skus] if p}
    lines = [
        PoLine(
            sku=ln.sku,
            name=names.get(ln.sku, ""),
            ordered=ln.quantity,
            unit_cost=offers[ln.sku].unit_cost,
        )
        for ln in body.lines
    ]
    now = datetime.now(UTC)
    return PurchaseOrderView(
        po_id=make_order_number(now, secrets.randbits(13), prefix="PO"),
        supplier=SupplierRef(
            id=supplier.id,
            name=supplier.name,
            email=supplier.email,
            lead_time_days=supplier.lead_time_days,
        ),
        warehouse_id=body.warehouse_id,
        status=PoStatus.SENT,
        currency=currencies.pop(),
        lines=lines,
        total_cost=total_cost(lines),
        created_at=now,
        updated_at=now,
    )


@router.get("/purchase-orders")
async def list_purchase_orders(
    session: SessionDep,
    status: PoStatus | None = None,
    supplier_id: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Purchase orders, newest first."""
    items = await supply_repo.list_purchase_orders(
        session, status.value if status else None, supplier_id, limit
    )
    return {"items": items}


@router.get("/purchase-orders/{po_id}", response_model=PurchaseOrderView)
async def get_purchase_order(
    po_id: PoId, session: SessionDep, client: TemporalDep
) -> PurchaseOrderView:
    """The purchase order as it stands: from its workflow while it runs, else as stored."""
    stored = await supply_repo.get_purchase_order(session, po_id)
    if stored is None:
        raise ApiError(404, "purchase_order_not_found", f"no purchase order {po_id}")
    if stored.status in (PoStatus.RECEIVED, PoStatus.CANCELLED, PoStatus.CLOSED):
        return stored
    return await order_calls.query_purchase_order(client, po_id) or stored


async def _po_update(
    session: AsyncSession, client: Client, po_id: str, name: str, req: object
) -> PurchaseOrderView:
    if await supply_repo.get_purchase_order(session, po_id) is None:
        raise ApiError(404, "purchase_order_not_found", f"no purchase order {po_id}")
    return await order_calls.run_update(
        client, po_id, name, req, PurchaseOrderView, update_id=request_key()
    )


@router.post(
    "/purchase-orders/{po_id}/confirm",
    response_model=PurchaseOrderView,
    responses=error_responses(409),
)
async def confirm_purchase_order(
    po_id: PoId,
    body: PurchaseOrderConfirm,
    session: SessionDep,
    client: TemporalDep,
    actor: ActorDep,
) -> PurchaseOrderView:
    """The supplier confirmed: its reference and the expected delivery date."""
    req = pc.PoConfirm(**body.model_dump(), actor=actor)
    return await _po_update(session, client, po_id, pc.UPDATE_PO_CONFIRM, req)


@router.post(
    "/purchase-orders/{po_id}/receipts",
    response_model=PurchaseOrderView,
    responses=error_responses(409),
)
async def receive_goods(
    po_id: PoId,
    body: GoodsReceipt,
    session: SessionDep,
    client: TemporalDep,
    actor: ActorDep,
    idempotency_key: IdempotencyKey = None,
) -> PurchaseOrderView:
    """Goods arrived: stock goes up and waiting backorders are served.

    Give an Idempotency-Key so that a retried receipt is booked once.
    """
    receipt_id = f"{po_id}:{idempotency_key or uuid.uuid4().hex}"
    req = pc.PoReceipt(
        receipt_id=receipt_id,
        lines={ln.sku: ln.quantity for ln in body.lines},
        actor=actor,
    )
    return await _po_update(session, client, po_id, pc.UPDATE_PO_RECEIVE, req)


@router.post(
    "/purchase-orders/{po_id}/cancel",
    response_model=PurchaseOrderView,
    responses=error_responses(409),
)
async def cancel_purchase_order(
    po_id: PoId,
    body: PurchaseOrderCancel,
    session: SessionDep,
    client: TemporalDep,
    actor: ActorDep,
) -> PurchaseOrderView:
    """Nothing more is expected: cancelled, or closed short when part has come."""
    req = pc.PoCancel(reason=body.reason, actor=actor)
    return await _po_update(session, client, po_id, pc.UPDATE_PO_CANCEL, req)
