"""order lines carry their unit price and line total, so reports sum money without JSONB

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("order_lines", sa.Column("unit_price", sa.Numeric(14, 2)))
    op.add_column("order_lines", sa.Column("line_total", sa.Numeric(14, 2)))
    # An order holds one line per SKU, so the SKU finds the line in the order's view.
    op.execute(
        "UPDATE order_lines l "
        "SET unit_price = (v.line->>'unit_price')::numeric, "
        "    line_total = (v.line->>'line_total')::numeric "
        "FROM (SELECT o.order_id, jsonb_array_elements(o.view->'lines') AS line FROM orders o) v "
        "WHERE v.order_id = l.order_id AND v.line->>'sku' = l.sku"
    )


def downgrade() -> None:
    op.drop_column("order_lines", "line_total")
    op.drop_column("order_lines", "unit_price")
