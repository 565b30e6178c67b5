"""express delivery: a fee per ship-to country, NULL where express is not offered

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24 09:00:00.000000
"""

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The demo fees, for databases seeded before the column existed (the seed never overwrites
# a rate row it finds).
EXPRESS_FEES = {"CN": Decimal("15.00"), "NL": Decimal("19.50")}


def upgrade() -> None:
    op.add_column("shipping_rates", sa.Column("express_fee", sa.Numeric(14, 2), nullable=True))
    for country, fee in EXPRESS_FEES.items():
        op.execute(
            sa.text(
                "UPDATE shipping_rates SET express_fee = :fee WHERE country = :country"
            ).bindparams(fee=fee, country=country)
        )


def downgrade() -> None:
    op.drop_column("shipping_rates", "express_fee")
