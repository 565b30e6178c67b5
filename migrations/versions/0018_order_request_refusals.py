"""changes the API refused for an existing order, for the order's history

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_request_refusals",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("request", sa.String(length=200), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("order_status", sa.String(length=24), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_request_refusals")),
    )
    op.create_index(
        op.f("ix_order_request_refusals_order_id"), "order_request_refusals", ["order_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_order_request_refusals_order_id"), table_name="order_request_refusals")
    op.drop_table("order_request_refusals")
