"""Access tables: API keys (hashed) and the webhook signatures already seen."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.tables import Base, _now


class ApiKey(Base):
    """A caller's key; only a hash of the secret is kept, so the table leaks no usable key."""

    __tablename__ = "api_keys"
    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    # A customer key sees only this customer's orders.
    customer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = _now()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class WebhookSignature(Base):
    """A signature accepted once; the same signed request again is a replay."""

    __tablename__ = "webhook_signatures"
    __table_args__ = (Index("ix_webhook_signatures_received", "received_at"),)
    signature: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[datetime] = _now()
