"""Every table of the system on one metadata, for migrations and their tests."""

from __future__ import annotations

from models import access_tables, filter_presets, idempotency, request_refusals, supply_tables
from models.tables import Base

# Imported for their tables, which join Base.metadata as they load.
MODULES = (access_tables, filter_presets, idempotency, request_refusals, supply_tables)

__all__ = ["MODULES", "Base"]
