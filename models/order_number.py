"""Order numbers: unique, human-readable and time-ordered, e.g. SO-20261123-0F3K9Q7A."""

from __future__ import annotations

from datetime import UTC, datetime

# Crockford's base32: no I, L, O or U, so a number read aloud or typed is not misread.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RANDOM_BITS = 13


def make_order_number(now: datetime, random_value: int, prefix: str = "SO") -> str:
    """Milliseconds since midnight then random bits: numbers sort by time within a day."""
    now = now.astimezone(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    millis = int((now - midnight).total_seconds() * 1000)
    value = (millis << RANDOM_BITS) | (random_value & ((1 << RANDOM_BITS) - 1))
    chars = []
    for _ in range(8):
        chars.append(ALPHABET[value & 31])
        value >>= 5
    return f"{prefix}-{now:%Y%m%d}-{''.join(reversed(chars))}"
