"""`orderflow keys create|list|revoke`: API keys straight in the database, for the first admin
key of a new installation (later ones can come from `POST /admin/api-keys`)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from models import api_keys
from models.api_keys import Role
from orderflow.db import make_engine, make_sessions
from orderflow.settings import Settings
from orderflow.staff_cli import table


async def _run(database_url: str, action: str, args: Any) -> str:
    engine = make_engine(database_url)
    try:
        async with make_sessions(engine).begin() as session:
            if action == "create":
                role = Role(args.role)
                if (role == Role.CUSTOMER) != bool(args.customer_id):
                    raise SystemExit("a customer key needs --customer-id; other roles take none")
                caller, token = await api_keys.create_key(
                    session, args.name, role, args.customer_id or None
                )
                return f"{caller.role.value} key {caller.key_id} ({caller.name}):\n{token}\n"
            if action == "revoke":
                if not await api_keys.revoke_key(session, args.key_id):
                    raise SystemExit(f"no API key {args.key_id}")
                return f"{args.key_id} revoked\n"
            rows = await api_keys.list_keys(session)
            return table(
                [
                    (
                        k["key_id"],
                        k["name"],
                        k["role"],
                        k["customer_id"] or "",
                        "revoked" if k["revoked_at"] else "active",
                    )
                    for k in rows
                ],
                ["key", "name", "role", "customer", "state"],
            )
    finally:
        await engine.dispose()


def run_keys(settings: Settings, args: Any) -> None:
    if not settings.database_url:
        sys.exit("set ORDERFLOW_DATABASE_URL (the dev stack prints its keys when it starts)")
    sys.stdout.write(asyncio.run(_run(settings.database_url, args.action, args)))
