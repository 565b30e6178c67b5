"""Suppliers, purchase orders and goods receipts in PostgreSQL; demand for replenishment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, cast, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models import inventory_repo
from models.purchasing import OPEN_PO, PurchaseOrderView
from models.replenishment import StockPosition, Suggestion, suggest
from models.stock_watch import available_units
from models.supply_tables import (
    PurchaseOrder,
    PurchaseOrderLine,
    StockReceipt,
    Supplier,
    SupplierProduct,
)
from models.tables import Order, OrderLineRow, Product

# Orders that never went ahead still showed demand, but a failed or cancelled order often
# comes back as a new one: counting both would count the demand twice.
NOT_DEMAND = ("CANCELLED", "FAILED")


# --- suppliers ------------------------------------------------------------------------------


async def save_supplier(
    session: AsyncSession, supplier: Mapping[str, Any], products: Sequence[Mapping[str, Any]]
) -> None:
    """Create or replace a supplier and the SKUs it sells."""
    stmt = insert(Supplier).values(**supplier)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[Supplier.id],
            set_={k: stmt.excluded[k] for k in supplier if k != "id"},
        )
    )
    await session.execute(
        delete(SupplierProduct).where(SupplierProduct.supplier_id == supplier["id"])
    )
    if products:
        await session.execute(
            insert(SupplierProduct).values([{"supplier_id": supplier["id"], **p} for p in products])
        )


def _supplier_dict(s: Supplier, products: Sequence[SupplierProduct]) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "email": s.email,
        "lead_time_days": s.lead_time_days,
        "active": s.active,
        "products": [
            {
                "sku": p.sku,
                "unit_cost": p.unit_cost,
                "currency": p.currency,
                "pack_size": p.pack_size,
                "preferred": p.preferred,
            }
            for p in products
        ],
    }


async def get_supplier(session: AsyncSession, supplier_id: str) -> dict[str, Any] | None:
    s = await session.get(Supplier, supplier_id)
    if s is None:
        return None
    products = (
        await session.execute(
            select(SupplierProduct)
            .where(SupplierProduct.supplier_id == supplier_id)
            .order_by(SupplierProduct.sku)
        )
    ).scalars()
    return _supplier_dict(s, list(products))


async def list_suppliers(session: AsyncSession) -> list[dict[str, Any]]:
    suppliers = (await session.execute(select(Supplier).order_by(Supplier.id))).scalars().all()
    products = (
        (await session.execute(select(SupplierProduct).order_by(SupplierProduct.sku)))
        .scalars()
        .all()
    )
    return [_supplier_dict(s, [p for p in products if p.supplier_id == s.id]) for s in suppliers]


async def supplier_offers(
    session: AsyncSession, supplier_id: str, skus: Sequence[str]
) -> dict[str, SupplierProduct]:
    rows = await session.execute(
        select(SupplierProduct).where(
            SupplierProduct.supplier_id == supplier_id, SupplierProduct.sku.in_(skus)
        )
    )
    return {p.sku: p for p in rows.scalars()}


# --- purchase orders ------------------------------------------------------------------------


async def claim_purchase_order(
    session: AsyncSession, view: PurchaseOrderView, idempotency_key: str | None
) -> str:
    """Write a new purchase order, or find the one a retry with the same key made."""
    if idempotency_key:
        existing = (
            await session.execute(
                select(PurchaseOrder.po_id).where(PurchaseOrder.idempotency_key == idempotency_key)
            )
        ).scalar()
        if existing is not None:
            return existing
    session.add(
        PurchaseOrder(
            po_id=view.po_id,
            idempotency_key=idempotency_key,
            supplier_id=view.supplier.id,
            warehouse_id=view.warehouse_id,
            status=view.status.value,
            view=view.model_dump(mode="json"),
            created_at=view.created_at,
            updated_at=view.updated_at,
        )
    )
    session.add_all(
        PurchaseOrderLine(
            po_id=view.po_id,
            sku=ln.sku,
            ordered=ln.ordered,
            received=0,
            open=True,
            unit_cost=ln.unit_cost,
        )
        for ln in view.lines
    )
    await session.flush()
    return view.po_id


async def save_purchase_order(session: AsyncSession, view: PurchaseOrderView) -> None:
    """Store the order's current view; lines no longer expected stop counting as on order."""
    still_open = view.status in OPEN_PO
    await session.execute(
        update(PurchaseOrder)
        .where(PurchaseOrder.po_id == view.po_id)
        .values(status=view.status.value, view=view.model_dump(mode="json"), updated_at=func.now())
    )
    for ln in view.lines:
        await session.execute(
            update(PurchaseOrderLine)
            .where(PurchaseOrderLine.po_id == view.po_id, PurchaseOrderLine.sku == ln.sku)
            .values(received=ln.received, open=still_open and ln.outstanding > 0)
        )


async def get_purchase_order(session: AsyncSession, po_id: str) -> PurchaseOrderView | None:
    row = await session.get(PurchaseOrder, po_id)
    return None if row is None else PurchaseOrderView.model_validate(row.view)


async def list_purchase_orders(
    session: AsyncSession, status: str | None, supplier_id: str | None, limit: int
) -> list[dict[str, Any]]:
    stmt = select(PurchaseOrder).order_by(
        PurchaseOrder.created_at.desc(), PurchaseOrder.po_id.desc()
    )
    if status:
        stmt = stmt.where(PurchaseOrder.status == status)
    if supplier_id:
        stmt = stmt.where(PurchaseOrder.supplier_id == supplier_id)
    return [r.view for r in (await session.execute(stmt.limit(limit))).scalars()]


async def receive_goods(
    session: AsyncSession,
    receipt_id: str,
    po_id: str,
    warehouse_id: str,
    lines: Mapping[str, int],
    strategy: str,
) -> list[str] | None:
    """Put received units on the shelf and serve backorders; None if this receipt was booked.

    The receipt rows and the stock change commit together, so a retried receipt adds nothing.
    """
    inserted = (
        await session.execute(
            insert(StockReceipt)
            .values(
                [
                    {
                        "receipt_id": receipt_id,
                        "sku": sku,
                        "po_id": po_id,
                        "warehouse_id": warehouse_id,
                        "quantity": qty,
                    }
                    for sku, qty in sorted(lines.items())
                ]
            )
            .on_conflict_do_nothing()
            .returning(StockReceipt.sku)
        )
    ).all()
    if not inserted:
        return None
    for sku, qty in sorted(lines.items()):
        await inventory_repo.add_on_hand(session, sku, warehouse_id, qty)
    return await inventory_repo.serve_backorders(session, strategy)


# --- replenishment --------------------------------------------------------------------------


async def daily_demand(
    session: AsyncSession, skus: Sequence[str], first_day: date, days: int
) -> dict[str, list[int]]:
    """Units ordered per SKU per day (UTC), oldest day first, `days` long."""
    day = cast(func.timezone("UTC", OrderLineRow.created_at), Date)
    start = datetime.combine(first_day, datetime.min.time()).replace(tzinfo=None)
    rows = await session.execute(
        select(OrderLineRow.sku, day, func.sum(OrderLineRow.quantity))
        .join(Order, Order.order_id == OrderLineRow.order_id)
        .where(
            OrderLineRow.sku.in_(skus),
            func.timezone("UTC", OrderLineRow.created_at) >= start,
            func.timezone("UTC", OrderLineRow.created_at) < start + timedelta(days=days),
            Order.status.not_in(NOT_DEMAND),
        )
        .group_by(OrderLineRow.sku, day)
    )
    series = {sku: [0] * days for sku in skus}
    for sku, d, units in rows:
        series[sku][(d - first_day).days] = int(units)
    return series


async def positions(session: AsyncSession, skus: Sequence[str]) -> dict[str, StockPosition]:
    """Available, still on order from suppliers, and wanted by waiting backorders, per SKU."""
    available = await available_units(session, skus)
    on_order = dict(
        (
            await session.execute(
                select(
                    PurchaseOrderLine.sku,
                    func.sum(PurchaseOrderLine.ordered - PurchaseOrderLine.received),
                )
                .where(PurchaseOrderLine.sku.in_(skus), PurchaseOrderLine.open)
                .group_by(PurchaseOrderLine.sku)
            )
        ).all()
    )
    backordered: dict[str, int] = dict(
        (
            await session.execute(
                text(
                    "SELECT w.key, sum(w.value::int) FROM backorders b, "
                    "jsonb_each_text(b.wanted) AS w(key, value) "
                    "WHERE b.status = 'waiting' AND w.key = ANY(:skus) GROUP BY w.key"
                ),
                {"skus": list(skus)},
            )
        ).all()
    )
    return {
        sku: StockPosition(
            available=available.get(sku, 0),
            on_order=int(on_order.get(sku, 0)),
            backordered=int(backordered.get(sku, 0)),
        )
        for sku in skus
    }


@dataclass(frozen=True)
class Plan:
    suggestion: Suggestion
    supplier_id: str | None
    lead_time_days: int
    unit_cost: Any
    currency: str


async def replenishment_plan(
    session: AsyncSession,
    today: date,
    window_days: int,
    review_days: int,
    default_lead_time_days: int,
    skus: Sequence[str] | None = None,
) -> list[Plan]:
    """A suggestion per active SKU, with the supplier it would be ordered from.

    The supplier is the SKU's preferred one, else the one with the shortest lead time; a SKU
    nobody supplies is planned with the default lead time and no supplier.
    """
    stmt = select(Product.sku, Product.safety_stock).where(Product.active)
    if skus:
        stmt = stmt.where(Product.sku.in_(skus))
    products = dict((await session.execute(stmt.order_by(Product.sku))).all())
    names = list(products)
    offers = (
        await session.execute(
            select(SupplierProduct, Supplier.lead_time_days)
            .join(Supplier, Supplier.id == SupplierProduct.supplier_id)
            .where(SupplierProduct.sku.in_(names), Supplier.active)
            .order_by(
                SupplierProduct.sku,
                SupplierProduct.preferred.desc(),
                Supplier.lead_time_days,
                SupplierProduct.unit_cost,
                Supplier.id,
            )
        )
    ).all()
    best: dict[str, tuple[SupplierProduct, int]] = {}
    for found, days in offers:
        best.setdefault(found.sku, (found, days))
    # The window ends with today, so orders placed today already count.
    first_day = today - timedelta(days=window_days - 1)
    demand = await daily_demand(session, names, first_day, window_days)
    have = await positions(session, names)
    plans = []
    for sku in names:
        offer = best[sku][0] if sku in best else None
        lead = best[sku][1] if sku in best else default_lead_time_days
        s = suggest(
            sku,
            demand[sku],
            window=window_days,
            lead_time_days=lead,
            review_days=review_days,
            safety_stock=products[sku],
            position=have[sku],
            pack_size=offer.pack_size if offer else 1,
        )
        plans.append(
            Plan(
                s,
                offer.supplier_id if offer else None,
                lead,
                offer.unit_cost if offer else None,
                offer.currency if offer else "",
            )
        )
    return plans
