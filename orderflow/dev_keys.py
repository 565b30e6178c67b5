"""The dev stack's own API keys: made once, kept in the data directory, printed at start."""

from __future__ import annotations

import json
import os

from models.api_keys import Role, check_key, create_key
from orderflow.api_client import dev_keys_path
from orderflow.db import make_engine, make_sessions
from orderflow.settings import Settings

# The demo customer the customer key acts for (see orderflow/seed.py).
DEV_CUSTOMER = "C-1001"
ROLES = {"staff": Role.STAFF, "customer": Role.CUSTOMER, "admin": Role.ADMIN}


async def ensure_dev_keys(settings: Settings, database_url: str) -> dict[str, str]:
    """A staff, a customer and an admin key that work; kept ones are reused."""
    path = dev_keys_path(settings)
    try:
        kept: dict[str, str] = json.loads(path.read_text())
    except (OSError, ValueError):
        kept = {}
    engine = make_engine(database_url)
    keys: dict[str, str] = {}
    try:
        async with make_sessions(engine).begin() as session:
            for name, role in ROLES.items():
                token = kept.get(name, "")
                if token and await check_key(session, token) is not None:
                    keys[name] = token
                    continue
                customer = DEV_CUSTOMER if role == Role.CUSTOMER else None
                _, keys[name] = await create_key(session, f"dev-{name}", role, customer)
    finally:
        await engine.dispose()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created readable by this user only, before the keys are written into it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(keys, f, indent=2)
    return keys
