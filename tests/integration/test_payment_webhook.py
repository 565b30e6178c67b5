"""The payment gateway's webhook: a bank transfer it received pays its order, signed and once."""

from __future__ import annotations

import json
import time
from typing import Any

from providers.webhooks import sign
from tests.integration.conftest import PAYMENT_WEBHOOK_SECRET, WEBHOOK_SECRET
from tests.integration.helpers import eventually, order_body, place, wait_status


def _event(reference: str, amount: str, currency: str = "USD", transfer_id: str = "tr_1") -> bytes:
    return json.dumps(
        {
            "event_id": f"evt_{transfer_id}",
            "type": "transfer.received",
            "transfer_id": transfer_id,
            "reference": reference,
            "amount": amount,
            "currency": currency,
            "received_at": "2026-11-23T10:00:00+00:00",
        }
    ).encode()


async def _post(stack, body: bytes, secret: str = PAYMENT_WEBHOOK_SECRET, at: int = 0) -> Any:
    headers = {**sign(secret, body, at or int(time.time())), "content-type": "application/json"}
    return await stack.api.post("/webhooks/payments", content=body, headers=headers)


async def _awaiting_payment(stack) -> dict:
    order = await place(stack.api, order_body(payment={"method": "bank_transfer"}))
    await wait_status(stack.api, order["order_id"], "AWAITING_PAYMENT")
    return order


async def test_a_transfer_at_the_gateway_pays_its_order(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    order = await _awaiting_payment(stack)
    oid, total = order["order_id"], order["totals"]["total"]
    sent = await stack.payment.post(
        "/_admin/transfers", json={"reference": oid, "amount": total, "currency": "USD"}
    )
    assert sent.status_code == 201, sent.text
    transfer_id = sent.json()["transfer_id"]
    view = await wait_status(stack.api, oid, "CONFIRMED")
    assert view["payments"][0]["status"] == "paid"
    assert view["payments"][0]["authorization_id"].endswith(transfer_id)
    assert any(h["kind"] == "payment_received" and h["actor"] == "gateway" for h in view["history"])

    # Paid twice by the customer: the second transfer is not a second payment; the money is
    # kept to be sent back, and staff are alerted.
    again = await stack.payment.post(
        "/_admin/transfers", json={"reference": oid, "amount": total, "currency": "USD"}
    )
    second = again.json()["transfer_id"]

    async def gateway_view() -> dict:
        listed = (await stack.payment.get("/_admin/transfers")).json()["transfers"]
        return {t["transfer_id"]: t for t in listed}

    delivered = await eventually(gateway_view, lambda t: t[second]["delivered"])
    assert delivered[transfer_id]["delivered"] and delivered[second]["attempts"] == 1
    view = (await stack.api.get(f"/orders/{oid}")).json()
    assert [(p["status"], p["authorization_id"].split(":")[-1]) for p in view["payments"]] == [
        ("paid", transfer_id),
        ("refund_due", second),
    ]
    assert [h["kind"] for h in view["history"]].count("payment_received") == 1
    assert [a["kind"] for a in view["alerts"] if not a["resolved"]] == ["overpaid"]


async def test_what_cannot_be_booked_is_acknowledged_and_changes_nothing(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    order = await _awaiting_payment(stack)
    oid, total = order["order_id"], order["totals"]["total"]
    cases = {
        "short": (_event(oid, "1.00", transfer_id="tr_short"), "kept_for_refund"),
        "euros": (_event(oid, total, "EUR", transfer_id="tr_eur"), "refused"),
        "unknown order": (_event("SO-19990101-00000000", total, transfer_id="tr_x"), "unmatched"),
    }
    for name, (body, outcome) in cases.items():
        r = await _post(stack, body)
        assert r.status_code == 200, (name, r.text)
        assert r.json()["status"] == outcome, (name, r.json())
    assert (await stack.api.get(f"/orders/{oid}")).json()["status"] == "AWAITING_PAYMENT"

    paid = _event(oid, total, transfer_id="tr_ok")
    r = await _post(stack, paid)
    assert r.json()["status"] == "recorded", r.json()
    # The gateway resends when our answer was lost: signed anew, recognised by the transfer id.
    resent = await _post(stack, paid, at=int(time.time()) + 1)
    assert resent.status_code == 200 and resent.json()["status"] == "duplicate"
    view = await wait_status(stack.api, oid, "CONFIRMED")
    assert [(p["amount"], p["status"]) for p in view["payments"]] == [
        ("1.00", "refund_due"),
        (total, "paid"),
    ]


async def test_unsigned_forged_or_replayed_transfers_are_refused(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    order = await _awaiting_payment(stack)
    oid, total = order["order_id"], order["totals"]["total"]
    body = _event(oid, total)
    unsigned = await stack.api.post(
        "/webhooks/payments", content=body, headers={"content-type": "application/json"}
    )
    assert unsigned.status_code == 401
    # The carrier's secret does not sign payments.
    forged = await _post(stack, body, secret=WEBHOOK_SECRET)
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "bad_signature"
    stale = await _post(stack, body, at=int(time.time()) - 3600)
    assert stale.status_code == 401
    assert (await stack.api.get(f"/orders/{oid}")).json()["status"] == "AWAITING_PAYMENT"

    now = int(time.time())
    headers = {**sign(PAYMENT_WEBHOOK_SECRET, body, now), "content-type": "application/json"}
    first = await stack.api.post("/webhooks/payments", content=body, headers=headers)
    assert first.json()["status"] == "recorded"
    replay = await stack.api.post("/webhooks/payments", content=body, headers=headers)
    assert replay.status_code == 409 and replay.json()["error"]["code"] == "replayed"

    garbage = b'{"type": "transfer.received", "amount": "-1"}'
    r = await _post(stack, garbage)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_event"
