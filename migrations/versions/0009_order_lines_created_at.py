"""order lines carry their order's placing time, indexed with the SKU

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 18:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("order_lines", sa.Column("created_at", sa.DateTime(timezone=True)))
    op.execute(
        "UPDATE order_lines l SET created_at = o.created_at FROM orders o "
        "WHERE o.order_id = l.order_id"
    )
    op.drop_index("ix_order_lines_sku", table_name="order_lines")
    op.create_index("ix_order_lines_sku_created", "order_lines", ["sku", "created_at", "order_id"])


def downgrade() -> None:
    op.drop_index("ix_order_lines_sku_created", table_name="order_lines")
    op.create_index("ix_order_lines_sku", "order_lines", ["sku", "order_id"])
    op.drop_column("order_lines", "created_at")
