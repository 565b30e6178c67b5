"""suppliers, purchase orders, goods receipts, safety stock and low-stock alerts

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23 19:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(14, 2)


def _now(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.add_column(
        "products",
        sa.Column("safety_stock", sa.Integer(), server_default="0", nullable=False),
    )
    op.create_table(
        "suppliers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("lead_time_days", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _now("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppliers")),
    )
    op.create_table(
        "supplier_products",
        sa.Column("supplier_id", sa.String(length=32), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("unit_cost", MONEY, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("pack_size", sa.Integer(), nullable=False),
        sa.Column("preferred", sa.Boolean(), nullable=False),
        sa.CheckConstraint("pack_size > 0", name=op.f("ck_supplier_products_pack_size_positive")),
        sa.ForeignKeyConstraint(
            ["sku"], ["products.sku"], name=op.f("fk_supplier_products_sku_products")
        ),
        sa.ForeignKeyConstraint(
            ["supplier_id"],
            ["suppliers.id"],
            name=op.f("fk_supplier_products_supplier_id_suppliers"),
        ),
        sa.PrimaryKeyConstraint("supplier_id", "sku", name=op.f("pk_supplier_products")),
    )
    op.create_index("ix_supplier_products_sku", "supplier_products", ["sku"])
    op.create_table(
        "purchase_orders",
        sa.Column("po_id", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=300), nullable=True),
        sa.Column("supplier_id", sa.String(length=32), nullable=False),
        sa.Column("warehouse_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("view", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["supplier_id"], ["suppliers.id"], name=op.f("fk_purchase_orders_supplier_id_suppliers")
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_purchase_orders_warehouse_id_warehouses"),
        ),
        sa.PrimaryKeyConstraint("po_id", name=op.f("pk_purchase_orders")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_purchase_orders_idempotency_key")),
    )
    op.create_index(
        "ix_purchase_orders_status_created", "purchase_orders", ["status", "created_at"]
    )
    op.create_table(
        "purchase_order_lines",
        sa.Column("po_id", sa.String(length=40), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("ordered", sa.Integer(), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.Column("unit_cost", MONEY, nullable=False),
        sa.CheckConstraint(
            "received <= ordered", name=op.f("ck_purchase_order_lines_not_over_received")
        ),
        sa.ForeignKeyConstraint(
            ["po_id"],
            ["purchase_orders.po_id"],
            name=op.f("fk_purchase_order_lines_po_id_purchase_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sku"], ["products.sku"], name=op.f("fk_purchase_order_lines_sku_products")
        ),
        sa.PrimaryKeyConstraint("po_id", "sku", name=op.f("pk_purchase_order_lines")),
    )
    op.create_index("ix_purchase_order_lines_sku", "purchase_order_lines", ["sku"])
    op.create_table(
        "stock_receipts",
        sa.Column("receipt_id", sa.String(length=120), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("po_id", sa.String(length=40), nullable=False),
        sa.Column("warehouse_id", sa.String(length=32), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        _now("received_at"),
        sa.ForeignKeyConstraint(
            ["sku"], ["products.sku"], name=op.f("fk_stock_receipts_sku_products")
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_stock_receipts_warehouse_id_warehouses"),
        ),
        sa.PrimaryKeyConstraint("receipt_id", "sku", name=op.f("pk_stock_receipts")),
    )
    op.create_index("ix_stock_receipts_po_id", "stock_receipts", ["po_id"])
    op.create_table(
        "low_stock_alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("available", sa.Integer(), nullable=False),
        sa.Column("safety_stock", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        _now("created_at"),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["sku"], ["products.sku"], name=op.f("fk_low_stock_alerts_sku_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_low_stock_alerts")),
    )
    op.create_index(
        "uq_low_stock_alerts_open",
        "low_stock_alerts",
        ["sku"],
        unique=True,
        postgresql_where=sa.text("resolved_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("low_stock_alerts")
    op.drop_table("stock_receipts")
    op.drop_table("purchase_order_lines")
    op.drop_table("purchase_orders")
    op.drop_table("supplier_products")
    op.drop_table("suppliers")
    op.drop_column("products", "safety_stock")
