"""A payment is booked once per reference, whichever way it arrives and however they race."""

from __future__ import annotations

import asyncio
import json
import time

from providers.webhooks import sign
from tests.integration.conftest import PAYMENT_WEBHOOK_SECRET
from tests.integration.helpers import eventually, order_body, place, wait_status
from workflows import contract as c


async def _awaiting_payment(stack) -> tuple[str, str]:
    order = await place(stack.api, order_body(payment={"method": "bank_transfer"}))
    await wait_status(stack.api, order["order_id"], "AWAITING_PAYMENT")
    return order["order_id"], order["totals"]["total"]


def _transfer(oid: str, amount: str, transfer_id: str) -> bytes:
    return json.dumps(
        {
            "event_id": f"evt_{transfer_id}_{time.monotonic_ns()}",
            "type": "transfer.received",
            "transfer_id": transfer_id,
            "reference": oid,
            "amount": amount,
            "currency": "USD",
            "received_at": "2026-11-23T10:00:00+00:00",
        }
    ).encode()


async def _webhook(stack, body: bytes):
    headers = {**sign(PAYMENT_WEBHOOK_SECRET, body, int(time.time())), "content-type": "x"}
    headers["content-type"] = "application/json"
    return await stack.api.post("/webhooks/payments", content=body, headers=headers)


async def test_the_same_payment_sent_every_way_at_once_is_booked_once(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    oid, total = await _awaiting_payment(stack)
    body = {"amount": total, "reference": "tr_race"}
    handle = stack.client.get_workflow_handle(c.order_workflow_id(oid))
    answers = await asyncio.gather(
        stack.api.post(f"/orders/{oid}/payments", json=body),
        stack.api.post(f"/orders/{oid}/payments", json=body),
        _webhook(stack, _transfer(oid, total, "tr_race")),
        _webhook(stack, _transfer(oid, total, "tr_race")),
        handle.signal(
            c.SIGNAL_PAYMENT, c.PaymentReceived(amount=total, reference="tr_race", actor="cli")
        ),
    )
    for r in answers[:4]:
        assert r.status_code == 200, r.text
    view = await wait_status(stack.api, oid, "CONFIRMED")
    paid = [p for p in view["payments"] if p["authorization_id"].endswith(":tr_race")]
    assert [p["status"] for p in paid] == ["paid"]
    assert [h["kind"] for h in view["history"]].count("payment_received") == 1
    assert not view["alerts"]


async def test_two_different_payments_at_once_book_one_and_refuse_the_other(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    oid, total = await _awaiting_payment(stack)
    first, second = await asyncio.gather(
        stack.api.post(f"/orders/{oid}/payments", json={"amount": total, "reference": "A-1"}),
        stack.api.post(f"/orders/{oid}/payments", json={"amount": total, "reference": "B-2"}),
    )
    codes = sorted([first.status_code, second.status_code])
    assert codes == [200, 409], (first.text, second.text)
    refused = first if first.status_code == 409 else second
    assert refused.json()["error"]["code"] == "already_paid"
    view = await wait_status(stack.api, oid, "CONFIRMED")
    assert [p["status"] for p in view["payments"]] == ["paid"]
    refusals = [h for h in view["history"] if h["kind"] == "payment_refused"]
    assert len(refusals) == 1 and "already_paid" in refusals[0]["detail"]


async def test_money_that_arrives_for_a_paid_order_is_kept_for_a_refund(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    oid, total = await _awaiting_payment(stack)
    r = await stack.api.post(f"/orders/{oid}/payments", json={"amount": total, "reference": "A-1"})
    assert r.status_code == 200, r.text
    # The customer also paid by transfer: that money is real, so it is kept and flagged.
    r = await _webhook(stack, _transfer(oid, total, "tr_extra"))
    assert r.status_code == 200 and r.json()["status"] == "kept_for_refund", r.text
    # Sent again by the gateway after a lost answer: still one overpayment.
    r = await _webhook(stack, _transfer(oid, total, "tr_extra"))
    assert r.status_code == 200, r.text
    view = (await stack.api.get(f"/orders/{oid}")).json()
    assert [p["status"] for p in view["payments"]] == ["paid", "refund_due"]
    assert [a["kind"] for a in view["alerts"] if not a["resolved"]] == ["overpaid"]

    # Staff send it back by hand and record that: the alert is resolved, nothing is due.
    extra = view["payments"][1]["authorization_id"]
    r = await stack.api.post(
        f"/orders/{oid}/refunds", json={"payment_id": extra, "reference": "BANK-OUT-9"}
    )
    assert r.status_code == 200, r.text
    assert [p["status"] for p in r.json()["payments"]] == ["paid", "refunded"]
    assert not [a for a in r.json()["alerts"] if not a["resolved"]]
    again = await stack.api.post(
        f"/orders/{oid}/refunds", json={"payment_id": extra, "reference": "BANK-OUT-9"}
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "no_refund_due"


async def test_a_payment_resent_after_a_worker_stall_is_booked_once(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    oid, total = await _awaiting_payment(stack)
    await stack.stop_worker()
    # The gateway's first delivery reaches the API while no worker runs; it gives up waiting.
    first = asyncio.create_task(_webhook(stack, _transfer(oid, total, "tr_stall")))
    await asyncio.sleep(1.0)
    await stack.start_worker()
    await first
    # The gateway resends, as it does after any answer that is not a 2xx (or that it lost).
    again = await _webhook(stack, _transfer(oid, total, "tr_stall"))
    assert again.status_code == 200, again.text
    view = await wait_status(stack.api, oid, "CONFIRMED")
    assert [p["status"] for p in view["payments"]] == ["paid"]
    await eventually(
        lambda: stack.api.get(f"/orders/{oid}"),
        lambda r: [h["kind"] for h in r.json()["history"]].count("payment_received") == 1,
    )


async def test_money_that_comes_before_the_order_asks_for_it_pays_the_order(make_stack) -> None:
    # The transfer reaches the order with its start, before it waits for payment.
    stack = await make_stack(start_worker=False, warehouse_release_seconds=3600)
    order = await place(stack.api, order_body(payment={"method": "bank_transfer"}))
    oid, total = order["order_id"], order["totals"]["total"]
    paying = asyncio.create_task(
        stack.api.post(f"/orders/{oid}/payments", json={"amount": total, "reference": "EARLY"})
    )
    await asyncio.sleep(1.0)
    await stack.start_worker()
    r = await paying
    assert r.status_code == 200, r.text
    view = await wait_status(stack.api, oid, "CONFIRMED")
    assert [p["status"] for p in view["payments"]] == ["paid"]
    statuses = [h["kind"] for h in view["history"] if h["kind"].startswith("status:")]
    assert "status:AWAITING_PAYMENT" not in statuses
