"""Signatures of webhooks already accepted, kept as long as a replay would still be in time."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.access_tables import WebhookSignature


async def remember_signature(session: AsyncSession, signature: str, keep_seconds: int) -> bool:
    """Record a verified signature; False when it was seen already (a replay)."""
    # Older signatures fail the timestamp check anyway, so they need not be kept.
    await session.execute(
        delete(WebhookSignature).where(
            WebhookSignature.received_at < func.now() - timedelta(seconds=2 * keep_seconds)
        )
    )
    inserted = await session.execute(
        insert(WebhookSignature)
        .values(signature=signature[:128])
        .on_conflict_do_nothing()
        .returning(WebhookSignature.signature)
    )
    return inserted.first() is not None
