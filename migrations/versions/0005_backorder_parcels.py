"""backorders fill a numbered parcel, from one or several warehouses; payments of split
orders can be partially captured

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 16:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column(
        "payments", "status", type_=sa.String(length=24), existing_type=sa.String(length=16)
    )
    op.add_column(
        "backorders", sa.Column("batch", sa.Integer(), server_default="1", nullable=False)
    )
    op.add_column(
        "backorders", sa.Column("split", sa.Boolean(), server_default="false", nullable=False)
    )


def downgrade() -> None:
    op.alter_column(
        "payments", "status", type_=sa.String(length=16), existing_type=sa.String(length=24)
    )
    op.drop_column("backorders", "split")
    op.drop_column("backorders", "batch")
