"""The carrier webhook: only signed, fresh events reach an order's workflow."""

from __future__ import annotations

import json
import time

from providers.webhooks import sign
from tests.integration.conftest import WEBHOOK_SECRET


def _event(reference: str, event_id: str = "evt-1") -> bytes:
    return json.dumps(
        {
            "event_id": event_id,
            "shipment_id": "shp_x",
            "tracking_number": "T1",
            "reference": reference,
            "type": "IN_TRANSIT",
            "occurred_at": "2026-11-23T10:00:00Z",
            "detail": "",
        }
    ).encode()


async def test_unsigned_or_forged_events_are_refused(make_stack) -> None:
    stack = await make_stack(start_worker=False)
    body = _event("SO-19990101-00000000")
    cases = [
        {},
        sign("wrong-secret", body, int(time.time())),
        sign(WEBHOOK_SECRET, body, int(time.time()) - 3600),
        sign(WEBHOOK_SECRET, body + b" ", int(time.time())),
    ]
    for headers in cases:
        r = await stack.api.post(
            "/webhooks/carrier",
            content=body,
            headers={**headers, "content-type": "application/json"},
        )
        assert r.status_code == 401, (headers, r.text)
        assert r.json()["error"]["code"] == "bad_signature"


async def test_signed_event_for_unknown_order_is_acknowledged(make_stack) -> None:
    stack = await make_stack(start_worker=False)
    body = _event("SO-19990101-00000000")
    r = await stack.api.post(
        "/webhooks/carrier",
        content=body,
        headers={
            **sign(WEBHOOK_SECRET, body, int(time.time())),
            "content-type": "application/json",
        },
    )
    assert r.status_code == 200
    assert r.json() == {"status": "ignored"}


async def test_signed_garbage_is_a_400(make_stack) -> None:
    stack = await make_stack(start_worker=False)
    body = b'{"type": "IN_TRANSIT"}'
    r = await stack.api.post(
        "/webhooks/carrier",
        content=body,
        headers={
            **sign(WEBHOOK_SECRET, body, int(time.time())),
            "content-type": "application/json",
        },
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_event"


async def test_a_replayed_signed_request_is_refused_and_a_resend_is_not(make_stack, caplog) -> None:
    stack = await make_stack(start_worker=False)
    anonymous = stack.api_as(None)
    body = _event("SO-19990101-00000000", event_id="evt-replay")
    now = int(time.time())
    headers = {**sign(WEBHOOK_SECRET, body, now), "content-type": "application/json"}
    first = await anonymous.post("/webhooks/carrier", content=body, headers=headers)
    assert first.status_code == 200, first.text
    again = await anonymous.post("/webhooks/carrier", content=body, headers=headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "replayed"
    assert any("replayed signature" in r.getMessage() for r in caplog.records)
    # The carrier's own resend of the same event is signed anew, and accepted.
    resend = {**sign(WEBHOOK_SECRET, body, now + 1), "content-type": "application/json"}
    r = await anonymous.post("/webhooks/carrier", content=body, headers=resend)
    assert r.status_code == 200, r.text


async def test_without_a_secret_no_webhook_is_trusted(make_stack) -> None:
    stack = await make_stack(start_worker=False, webhook_secret="")
    body = _event("SO-19990101-00000000")
    r = await stack.api_as(None).post(
        "/webhooks/carrier",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 503 and r.json()["error"]["code"] == "webhooks_not_configured"
