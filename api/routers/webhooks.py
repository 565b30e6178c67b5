"""Webhooks from third parties, signed with HMAC: the carrier's tracking events and the payment
gateway's bank transfers."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api import order_calls
from api.deps import SessionsDep, SettingsDep, TemporalDep
from api.errors import ApiError, error_responses
from api.transfers import record_transfer
from models import webhooks_repo
from providers.payment import TransferReceived
from providers.webhooks import SIGNATURE_HEADER, WebhookSignatureError, verify
from workflows import contract as c

router = APIRouter(tags=["webhooks"])
log = logging.getLogger(__name__)


async def _verified_body(
    request: Request,
    secret: str,
    sender: str,
    tolerance_seconds: int,
    sessions: async_sessionmaker[AsyncSession],
) -> bytes:
    """The body of a webhook signed with `secret` within tolerance and never seen before."""
    body = await request.body()
    if not secret:
        # Unsigned events could be forged by anyone; refuse rather than trust them.
        log.error("%s webhook refused: no webhook secret is configured", sender)
        raise ApiError(503, "webhooks_not_configured", f"the {sender} webhook secret is not set")
    try:
        verify(secret, request.headers, body, now=time.time(), tolerance_seconds=tolerance_seconds)
    except WebhookSignatureError as exc:
        log.warning("%s webhook refused: %s", sender, exc)
        raise ApiError(401, "bad_signature", str(exc)) from None
    signature = request.headers.get(SIGNATURE_HEADER, "")
    async with sessions.begin() as session:
        first = await webhooks_repo.remember_signature(session, signature, tolerance_seconds)
    if not first:
        # A resend by the sender is signed anew; the very same signed request is a replay.
        log.warning("%s webhook refused: replayed signature %s", sender, signature[:20])
        raise ApiError(409, "replayed", "this signed request was received before")
    return body


@router.post("/webhooks/carrier", responses=error_responses(400, 401, 409, 413, 503))
async def carrier_webhook(
    request: Request, settings: SettingsDep, client: TemporalDep, sessions: SessionsDep
) -> dict[str, Any]:
    """Verify a tracking event and hand it to the order's workflow as a signal."""
    body = await _verified_body(
        request, settings.webhook_secret, "carrier", settings.webhook_tolerance_seconds, sessions
    )
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


@router.post("/webhooks/payments", responses=error_responses(400, 401, 409, 413, 503))
async def payment_webhook(
    request: Request, settings: SettingsDep, client: TemporalDep, sessions: SessionsDep
) -> dict[str, Any]:
    """A bank transfer the gateway received: the money for a pay-later order.

    Answers 2xx for every outcome the gateway should not retry (recorded, already recorded,
    refused by the order's rules, unknown order); 503 when the order could not take it now.
    """
    body = await _verified_body(
        request,
        settings.payment_webhook_secret,
        "payment",
        settings.webhook_tolerance_seconds,
        sessions,
    )
    try:
        event = TransferReceived.model_validate_json(body)
    except ValidationError as exc:
        raise ApiError(400, "invalid_event", f"not a transfer event: {exc}") from None
    return await record_transfer(client, sessions, event)
