"""search: the distinct customer names of orders, for partial name search

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-24 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every writer of `orders` keeps the names current through these triggers, whatever it is
# (the worker's read-model write, an import, a bulk load): none of them has to remember.
REMEMBER = """
CREATE FUNCTION remember_order_customer_name() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_customer_names (name) VALUES (NEW.customer_name) ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "order_customer_names",
        sa.Column("name", sa.String(length=200), primary_key=True),
    )
    op.create_index(
        "ix_order_customer_names_name_trgm",
        "order_customer_names",
        ["name"],
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.create_index("ix_orders_customer_name", "orders", ["customer_name"])
    op.execute(REMEMBER)
    op.execute(
        "CREATE TRIGGER orders_customer_name_inserted AFTER INSERT ON orders "
        "FOR EACH ROW EXECUTE FUNCTION remember_order_customer_name()"
    )
    op.execute(
        "CREATE TRIGGER orders_customer_name_changed AFTER UPDATE OF customer_name ON orders "
        "FOR EACH ROW WHEN (OLD.customer_name IS DISTINCT FROM NEW.customer_name) "
        "EXECUTE FUNCTION remember_order_customer_name()"
    )
    op.execute(
        "INSERT INTO order_customer_names (name) SELECT DISTINCT customer_name FROM orders "
        "ON CONFLICT DO NOTHING"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER orders_customer_name_changed ON orders")
    op.execute("DROP TRIGGER orders_customer_name_inserted ON orders")
    op.execute("DROP FUNCTION remember_order_customer_name()")
    op.drop_index("ix_orders_customer_name", table_name="orders")
    op.drop_index("ix_order_customer_names_name_trgm", table_name="order_customer_names")
    op.drop_table("order_customer_names")
