"""Idempotency keys: each caller's requests by key, and the answer each one got.

A key belongs to one API key (its principal), so two callers never share or see each other's.
A row is claimed before its request runs and holds the answer once it is known; it is written
before the answer is sent, so a client that never received it gets it on its retry.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, Index, Integer, LargeBinary, String, delete, func, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from models.tables import Base, _now

RUNNING = "running"
DONE = "done"


class IdempotencyKey(Base):
    """One caller's key: the request it was first used for, and that request's answer."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created", "created_at"),)
    # The API key's id: keys of different callers never meet.
    principal: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    # Who runs the request now: a request taken over after its lease cannot overwrite the
    # answer of the one that took it.
    claim: Mapped[str] = mapped_column(String(32))
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_headers: Mapped[list[Any] | None] = mapped_column(JSONB, nullable=True)
    # Sealed with the caller's own API key (see api/idempotency.py): the table alone does not
    # reveal an answer, not even a new API key's secret.
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = _now()
    claimed_at: Mapped[datetime] = _now()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Outcome(StrEnum):
    RUN = "run"
    REPLAY = "replay"
    IN_PROGRESS = "in_progress"
    REUSED = "reused"


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Claim:
    """What to do with a request: run it (holding `token`), replay `answer`, or refuse it."""

    outcome: Outcome
    token: str = ""
    answer: StoredAnswer | None = None


async def claim(
    session: AsyncSession,
    principal: str,
    key: str,
    request_hash: str,
    *,
    lease_seconds: float,
    ttl_seconds: float,
) -> Claim:
    """Claim `key` for a request, or say why not. The caller commits."""
    token = secrets.token_hex(16)
    where = (IdempotencyKey.principal == principal, IdempotencyKey.key == key)
    # A concurrent release can delete the row between the insert and the read: try again.
    for _ in range(3):
        inserted = await session.execute(
            insert(IdempotencyKey)
            .values(
                principal=principal,
                key=key,
                request_hash=request_hash,
                state=RUNNING,
                claim=token,
            )
            .on_conflict_do_nothing()
            .returning(IdempotencyKey.key)
        )
        if inserted.first() is not None:
            return Claim(Outcome.RUN, token)
        found = (
            await session.execute(
                select(IdempotencyKey, func.now()).where(*where).with_for_update()
            )
        ).first()
        if found is None:
            continue
        row, now = found
        if row.created_at < now - timedelta(seconds=ttl_seconds):
            # Expired and not purged yet: the key is free again.
            await session.execute(
                update(IdempotencyKey)
                .where(*where)
                .values(
                    request_hash=request_hash,
                    state=RUNNING,
                    claim=token,
                    status_code=None,
                    response_headers=None,
                    response_body=None,
                    created_at=now,
                    claimed_at=now,
                    completed_at=None,
                )
            )
            return Claim(Outcome.RUN, token)
        if row.request_hash != request_hash:
            return Claim(Outcome.REUSED)
        if row.state == DONE and row.status_code is not None:
            headers = [(str(n), str(v)) for n, v in row.response_headers or []]
            return Claim(
                Outcome.REPLAY,
                answer=StoredAnswer(row.status_code, headers, row.response_body or b""),
            )
        if row.claimed_at > now - timedelta(seconds=lease_seconds):
            return Claim(Outcome.IN_PROGRESS)
        # The request that held it died with its process: this retry runs it again.
        await session.execute(
            update(IdempotencyKey).where(*where).values(claim=token, claimed_at=now)
        )
        return Claim(Outcome.RUN, token)
    return Claim(Outcome.IN_PROGRESS)


async def complete(
    session: AsyncSession, principal: str, key: str, token: str, answer: StoredAnswer
) -> bool:
    """Keep the answer of the request holding `token`; False if another took the key over."""
    done = await session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.principal == principal,
            IdempotencyKey.key == key,
            IdempotencyKey.claim == token,
            IdempotencyKey.state == RUNNING,
        )
        .values(
            state=DONE,
            status_code=answer.status,
            response_headers=[list(h) for h in answer.headers],
            response_body=answer.body,
            completed_at=func.now(),
        )
        .returning(IdempotencyKey.key)
    )
    return done.first() is not None


async def renew(session: AsyncSession, principal: str, key: str, token: str) -> bool:
    """Say the request holding `token` still runs, so its lease does not end under it; False
    when it no longer holds the key."""
    renewed = await session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.principal == principal,
            IdempotencyKey.key == key,
            IdempotencyKey.claim == token,
            IdempotencyKey.state == RUNNING,
        )
        .values(claimed_at=func.now())
        .returning(IdempotencyKey.key)
    )
    return renewed.first() is not None


async def release(session: AsyncSession, principal: str, key: str, token: str) -> None:
    """Forget a claim whose answer is not kept, so that a retry runs the request again."""
    await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.principal == principal,
            IdempotencyKey.key == key,
            IdempotencyKey.claim == token,
            IdempotencyKey.state == RUNNING,
        )
    )


async def purge(session: AsyncSession, ttl_seconds: float) -> int:
    """Delete keys older than `ttl_seconds`; how many went."""
    gone = await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.created_at < func.now() - timedelta(seconds=ttl_seconds)
        )
    )
    return int(gone.rowcount)  # type: ignore[attr-defined]
