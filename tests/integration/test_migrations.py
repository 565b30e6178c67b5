"""The migrations build exactly the schema the tables describe, and step down again."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text

from models.all_tables import Base
from orderflow.db import sqlalchemy_url
from orderflow.embedded import start_postgres
from orderflow.migrate import alembic_config


def _migrated(data_dir: Path, database: str, revision: str) -> tuple[Config, Engine]:
    """A database of its own in the test PostgreSQL, migrated up to `revision`."""
    url = start_postgres(data_dir, database=database)
    cfg = alembic_config(url)
    command.upgrade(cfg, revision)
    return cfg, create_engine(sqlalchemy_url(url))


def test_migrations_match_the_tables_and_downgrade(data_dir) -> None:
    cfg, engine = _migrated(data_dir, "orderflow_migrations", "head")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")
    engine.dispose()


def test_express_fees_reach_a_database_seeded_before_them(data_dir) -> None:
    cfg, engine = _migrated(data_dir, "orderflow_express_fees", "0011")
    with engine.begin() as conn:
        conn.execute(
            text(
                "insert into shipping_rates (country, fee, free_over) values"
                " ('CN', 5.00, 99.00), ('NL', 7.50, 150.00), ('**', 15.00, null)"
            )
        )
    command.upgrade(cfg, "0012")
    with engine.connect() as conn:
        fees = dict(conn.execute(text("select country, express_fee from shipping_rates")).all())
    engine.dispose()
    assert fees == {"CN": Decimal("15.00"), "NL": Decimal("19.50"), "**": None}
