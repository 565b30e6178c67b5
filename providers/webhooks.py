"""HMAC-SHA256 webhook signatures: the carrier stand-in signs, the API verifies."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx

TIMESTAMP_HEADER = "X-Orderflow-Timestamp"
SIGNATURE_HEADER = "X-Orderflow-Signature"
SCHEME = "v1"


class WebhookSignatureError(Exception):
    """A webhook's signature is missing, wrong, or too old; `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    if not secret:
        # An empty key would make every signature forgeable; treat it as a setup error.
        raise ValueError("the webhook secret is empty")
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The two headers that sign `body` at `timestamp` (unix seconds)."""
    return {
        TIMESTAMP_HEADER: str(int(timestamp)),
        SIGNATURE_HEADER: f"{SCHEME}={_digest(secret, body, int(timestamp))}",
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance_seconds: int,
) -> None:
    """Raise WebhookSignatureError unless `body` was signed with `secret` within tolerance."""
    raw_timestamp = _header(headers, TIMESTAMP_HEADER)
    if raw_timestamp is None:
        raise WebhookSignatureError("missing timestamp header")
    raw_signature = _header(headers, SIGNATURE_HEADER)
    if raw_signature is None:
        raise WebhookSignatureError("missing signature header")
    try:
        timestamp = int(raw_timestamp.strip())
    except ValueError:
        raise WebhookSignatureError("malformed timestamp") from None
    # Checked both ways so a replayed or pre-dated request is refused alike.
    if abs(now - timestamp) > tolerance_seconds:
        raise WebhookSignatureError("timestamp outside tolerance")
    expected = _digest(secret, body, timestamp)
    # Several comma-separated signatures are accepted so a secret can be rotated without downtime.
    candidates = [
        part.strip()[len(SCHEME) + 1 :]
        for part in raw_signature.split(",")
        if part.strip().startswith(f"{SCHEME}=")
    ]
    if not candidates:
        raise WebhookSignatureError("no v1 signature")
    matched = False
    for candidate in candidates:
        # Every candidate is compared so the timing does not reveal which one matched.
        matched |= hmac.compare_digest(candidate.encode(), expected.encode())
    if not matched:
        raise WebhookSignatureError("signature mismatch")


async def post_signed(
    client: httpx.AsyncClient, url: str, secret: str, payload: dict[str, Any]
) -> str | None:
    """POST `payload` as JSON, signed now; None when the receiver took it, else what failed.

    Signed at each attempt, so a retry after a long outage is not too old.
    """
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json"}
    if secret:
        headers.update(sign(secret, body, int(time.time())))
    try:
        response = await client.post(url, content=body, headers=headers)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if response.is_success else f"HTTP {response.status_code}"
