"""the read model keeps the write of the workflow task that counts

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-23 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows written before it compare as the oldest: the next write of their order wins.
    op.add_column(
        "orders", sa.Column("version", sa.BigInteger(), server_default="0", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("orders", "version")
