"""API keys: who may call, in which role; the secret is shown once and stored as a hash.

A key reads `ofk_<key id>_<secret>`. The secret has 256 random bits, so a plain SHA-256 of the
whole key is safe to store and fast to check (no password-style stretching is needed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.access_tables import ApiKey

PREFIX = "ofk"


class Role(StrEnum):
    CUSTOMER = "customer"
    STAFF = "staff"
    ADMIN = "admin"


# Each role may do what the roles before it may (a customer only for itself).
RANK = {Role.CUSTOMER: 0, Role.STAFF: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Caller:
    key_id: str
    name: str
    role: Role
    customer_id: str | None = None

    @property
    def actor(self) -> str:
        """How the caller appears in order histories."""
        return f"{self.role.value}:{self.name}"

    def at_least(self, role: Role) -> bool:
        return RANK[self.role] >= RANK[role]


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def key_id_of(token: str) -> str | None:
    """The key id part of a well-formed key, else None."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


def new_key() -> tuple[str, str]:
    """A fresh (key id, full key)."""
    key_id = secrets.token_hex(6)
    return key_id, f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


async def create_key(
    session: AsyncSession, name: str, role: Role, customer_id: str | None = None
) -> tuple[Caller, str]:
    """Store a new key; the full key is returned this once and never again."""
    if (role == Role.CUSTOMER) != (customer_id is not None):
        raise ValueError("a customer key names its customer, and only a customer key does")
    key_id, token = new_key()
    session.add(
        ApiKey(
            key_id=key_id,
            name=name,
            role=role.value,
            customer_id=customer_id,
            secret_hash=hash_key(token),
        )
    )
    await session.flush()
    return Caller(key_id, name, role, customer_id), token


async def check_key(session: AsyncSession, token: str) -> Caller | None:
    """The caller a key stands for, or None if it is malformed, unknown or revoked."""
    key_id = key_id_of(token)
    if key_id is None:
        return None
    row = await session.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.secret_hash, hash_key(token)):
        return None
    return Caller(row.key_id, row.name, Role(row.role), row.customer_id)


async def revoke_key(session: AsyncSession, key_id: str) -> bool:
    """Revoke a key; False if there is no such key (revoking twice is fine)."""
    done = await session.execute(
        update(ApiKey)
        .where(ApiKey.key_id == key_id)
        .values(revoked_at=func.coalesce(ApiKey.revoked_at, func.now()))
        .returning(ApiKey.key_id)
    )
    return done.first() is not None


async def list_keys(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.execute(select(ApiKey).order_by(ApiKey.created_at, ApiKey.key_id))
    return [
        {
            "key_id": k.key_id,
            "name": k.name,
            "role": k.role,
            "customer_id": k.customer_id,
            "created_at": k.created_at,
            "revoked_at": k.revoked_at,
        }
        for k in rows.scalars()
    ]
