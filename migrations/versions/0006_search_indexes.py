"""search: customer phone on the read model, trigram and amount indexes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 17:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGRAM = ("order_id", "customer_name", "customer_email", "customer_phone", "channel_order_id")


def upgrade() -> None:
    # pg_trgm is a trusted extension: the database owner may create it.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.add_column(
        "orders",
        sa.Column("customer_phone", sa.String(length=64), server_default="", nullable=False),
    )
    op.execute("UPDATE orders SET customer_phone = coalesce(view->'customer'->>'phone', '')")
    op.create_index("ix_orders_total", "orders", ["total", "order_id"])
    for col in TRIGRAM:
        op.create_index(
            f"ix_orders_{col}_trgm",
            "orders",
            [col],
            postgresql_using="gin",
            postgresql_ops={col: "gin_trgm_ops"},
        )
    op.create_index(
        "ix_products_name_trgm",
        "products",
        ["name"],
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_products_name_trgm", table_name="products")
    for col in TRIGRAM:
        op.drop_index(f"ix_orders_{col}_trgm", table_name="orders")
    op.drop_index("ix_orders_total", table_name="orders")
    op.drop_column("orders", "customer_phone")
