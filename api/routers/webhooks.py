"""Webhooks from third parties: the carrier's tracking events, signed with HMAC."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError

from api import order_calls
from api.deps import SessionsDep, SettingsDep, TemporalDep
from api.errors import ApiError, error_responses
from models import webhooks_repo
from providers.webhooks import SIGNATURE_HEADER, WebhookSignatureError, verify
from workflows import contract as c

router = APIRouter(tags=["webhooks"])
log = logging.getLogger(__name__)


@router.post("/webhooks/carrier", responses=error_responses(400, 401, 409, 413, 503))
async def carrier_webhook(
    request: Request, settings: SettingsDep, client: TemporalDep, sessions: SessionsDep
) -> dict[str, Any]:
    """Verify a tracking event and hand it to the order's workflow as a signal."""
    body = await request.body()
    if not settings.webhook_secret:
        # Unsigned events could be forged by anyone; refuse rather than trust them.
        log.error("carrier webhook refused: no webhook secret is configured")
        raise ApiError(503, "webhooks_not_configured", "the webhook secret is not set")
    try:
        verify(
            settings.webhook_secret,
            request.headers,
            body,
            now=time.time(),
            tolerance_seconds=settings.webhook_tolerance_seconds,
        )
    except WebhookSignatureError as exc:
        log.warning("carrier webhook refused: %s", exc)
        raise ApiError(401, "bad_signature", str(exc)) from None
    signature = request.headers.get(SIGNATURE_HEADER, "")
    async with sessions.begin() as session:
        first = await webhooks_repo.remember_signature(
            session, signature, settings.webhook_tolerance_seconds
        )
    if not first:
        # A resend by the carrier is signed anew; the very same signed request is a replay.
        log.warning("carrier webhook refused: replayed signature %s", signature[:20])
        raise ApiError(409, "replayed", "this signed request was received before")
    try:
        data = json.loads(body)
        payload = c.CarrierEvent.model_validate(data)
        reference = str(data["reference"])
    except (ValidationError, ValueError, KeyError, TypeError) as exc:
        raise ApiError(400, "invalid_event", f"not a tracking event: {exc}") from None
    # The reference is an order number, or a return number for parcels coming back.
    delivered = await order_calls.send_signal(client, reference, c.SIGNAL_CARRIER_EVENT, payload)
    # An event for an order that has ended is acknowledged, or the carrier would retry forever.
    return {"status": "accepted" if delivered else "ignored"}
