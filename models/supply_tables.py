"""Supply: suppliers and what they sell, purchase orders, goods receipts, low-stock alerts."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.tables import Base, Money, _now


class Supplier(Base):
    __tablename__ = "suppliers"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200))
    # Days from sending a purchase order to the goods on our shelf.
    lead_time_days: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = _now()


class SupplierProduct(Base):
    """A SKU a supplier sells us, at what cost and in what pack size."""

    __tablename__ = "supplier_products"
    __table_args__ = (
        CheckConstraint("pack_size > 0", name="pack_size_positive"),
        Index("ix_supplier_products_sku", "sku"),
    )
    supplier_id: Mapped[str] = mapped_column(ForeignKey("suppliers.id"), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"), primary_key=True)
    unit_cost: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    pack_size: Mapped[int] = mapped_column(Integer, default=1)
    # Replenishment orders from the preferred supplier of a SKU first.
    preferred: Mapped[bool] = mapped_column(default=False)


class PurchaseOrder(Base):
    """The read model of a purchase order; the key makes a retried create find the same one."""

    __tablename__ = "purchase_orders"
    __table_args__ = (Index("ix_purchase_orders_status_created", "status", "created_at"),)
    po_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(300), unique=True, nullable=True)
    supplier_id: Mapped[str] = mapped_column(ForeignKey("suppliers.id"))
    warehouse_id: Mapped[str] = mapped_column(ForeignKey("warehouses.id"))
    status: Mapped[str] = mapped_column(String(24))
    view: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PurchaseOrderLine(Base):
    """Ordered and received units; what is still to come counts as stock on order."""

    __tablename__ = "purchase_order_lines"
    __table_args__ = (
        CheckConstraint("received <= ordered", name="not_over_received"),
        Index("ix_purchase_order_lines_sku", "sku"),
    )
    po_id: Mapped[str] = mapped_column(
        ForeignKey("purchase_orders.po_id", ondelete="CASCADE"), primary_key=True
    )
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"), primary_key=True)
    ordered: Mapped[int] = mapped_column(Integer)
    received: Mapped[int] = mapped_column(Integer, default=0)
    # Set when the order closes short: the rest will not come.
    open: Mapped[bool] = mapped_column(default=True)
    unit_cost: Mapped[Decimal] = mapped_column(Money)


class StockReceipt(Base):
    """Goods that arrived; the receipt id makes a repeated receipt add stock once."""

    __tablename__ = "stock_receipts"
    receipt_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"), primary_key=True)
    po_id: Mapped[str] = mapped_column(String(40), index=True)
    warehouse_id: Mapped[str] = mapped_column(ForeignKey("warehouses.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = _now()


class LowStockAlert(Base):
    """A SKU whose available units fell below its safety stock; at most one open per SKU."""

    __tablename__ = "low_stock_alerts"
    __table_args__ = (
        Index(
            "uq_low_stock_alerts_open",
            "sku",
            unique=True,
            postgresql_where=text("resolved_at IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"))
    available: Mapped[int] = mapped_column(Integer)
    safety_stock: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = _now()
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
