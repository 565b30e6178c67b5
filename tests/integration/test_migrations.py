"""The migrations build exactly the schema the tables describe, and step down again."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from models.tables import Base
from orderflow.db import sqlalchemy_url
from orderflow.embedded import start_postgres
from orderflow.migrate import alembic_config


def test_migrations_match_the_tables_and_downgrade(data_dir) -> None:
    url = start_postgres(data_dir, database="orderflow_migrations")
    cfg = alembic_config(url)
    command.upgrade(cfg, "head")
    engine = create_engine(sqlalchemy_url(url))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")
    engine.dispose()
