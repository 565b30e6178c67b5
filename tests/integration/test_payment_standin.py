"""The payment stand-in over real HTTP, driven through the payment client."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Response

from providers.payment import (
    GatewayUnavailable,
    HttpPaymentGateway,
    PaymentDeclined,
    PaymentRejected,
)
from providers.payment_standin import create_app


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run `app` with uvicorn on a free local port in a thread; yield its base URL."""
    # IPPROTO_TCP spelled out: asyncio only turns Nagle off on sockets that say so, and with
    # Nagle on every request waits for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def key() -> str:
    """A fresh idempotency key."""
    return uuid.uuid4().hex


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve(create_app()) as url:
        yield url


@pytest.fixture
async def admin(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=5.0) as client:
        (await client.post("/_admin/reset")).raise_for_status()
        yield client


@pytest.fixture
async def gateway(base_url: str, admin: httpx.AsyncClient) -> AsyncIterator[HttpPaymentGateway]:
    client = HttpPaymentGateway(base_url, timeout=2.0)
    yield client
    await client.aclose()


async def ledger(admin: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every authorization the gateway knows, with its operations."""
    response = await admin.get("/_admin/ledger")
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["authorizations"]
    return result


async def authorized(gateway: HttpPaymentGateway, amount: str = "40.00") -> str:
    """The id of a fresh authorization of `amount`."""
    auth = await gateway.authorize(
        idempotency_key=key(),
        order_id="ord_1",
        amount=Decimal(amount),
        currency="EUR",
        token="tok_ok",
    )
    return auth.id


async def test_authorize_ok(gateway: HttpPaymentGateway) -> None:
    auth = await gateway.authorize(
        idempotency_key=key(),
        order_id="ord_1",
        amount=Decimal("25.50"),
        currency="EUR",
        token="tok_ok",
    )
    assert auth.status == "authorized"
    assert auth.amount == Decimal("25.50")
    assert isinstance(auth.amount, Decimal)
    assert auth.currency == "EUR"
    assert auth.order_id == "ord_1"
    assert auth.captured_amount == Decimal("0")
    assert await gateway.get_authorization(auth.id) == auth


@pytest.mark.parametrize(
    ("token", "reason"), [("tok_decline", "card_declined"), ("tok_nope", "invalid_token")]
)
async def test_decline(
    gateway: HttpPaymentGateway, admin: httpx.AsyncClient, token: str, reason: str
) -> None:
    with pytest.raises(PaymentDeclined) as declined:
        await gateway.authorize(
            idempotency_key=key(),
            order_id="ord_1",
            amount=Decimal("10.00"),
            currency="EUR",
            token=token,
        )
    assert declined.value.reason == reason
    assert await ledger(admin) == []


async def test_flaky_token_fails_once_then_authorizes(
    gateway: HttpPaymentGateway, admin: httpx.AsyncClient
) -> None:
    request: dict[str, Any] = {
        "idempotency_key": key(),
        "order_id": "ord_1",
        "amount": Decimal("12.00"),
        "currency": "EUR",
        "token": "tok_flaky",
    }
    with pytest.raises(GatewayUnavailable):
        await gateway.authorize(**request)
    assert await ledger(admin) == []
    auth = await gateway.authorize(**request)
    assert auth.status == "authorized"
    assert [entry["id"] for entry in await ledger(admin)] == [auth.id]


async def test_retries_with_the_same_key_return_the_same_result(
    gateway: HttpPaymentGateway, admin: httpx.AsyncClient
) -> None:
    auth_key, capture_key = key(), key()
    request: dict[str, Any] = {
        "idempotency_key": auth_key,
        "order_id": "ord_1",
        "amount": Decimal("30.00"),
        "currency": "EUR",
        "token": "tok_ok",
    }
    first = await gateway.authorize(**request)
    assert (await gateway.authorize(**request)).id == first.id

    capture = await gateway.capture(
        idempotency_key=capture_key, authorization_id=first.id, amount=Decimal("30.00")
    )
    again = await gateway.capture(
        idempotency_key=capture_key, authorization_id=first.id, amount=Decimal("30.00")
    )
    assert again == capture

    entries = await ledger(admin)
    assert len(entries) == 1
    assert len(entries[0]["captures"]) == 1
    assert entries[0]["captured_amount"] == "30.00"


async def test_same_key_with_another_body_is_refused(gateway: HttpPaymentGateway) -> None:
    auth_id = await authorized(gateway)
    capture_key = key()
    await gateway.capture(
        idempotency_key=capture_key, authorization_id=auth_id, amount=Decimal("5")
    )
    with pytest.raises(PaymentRejected) as rejected:
        await gateway.capture(
            idempotency_key=capture_key, authorization_id=auth_id, amount=Decimal("6")
        )
    assert rejected.value.status_code == 422
    assert rejected.value.reason == "idempotency_key_reused"


async def test_over_capture_is_refused(gateway: HttpPaymentGateway) -> None:
    auth_id = await authorized(gateway, "40.00")
    await gateway.capture(idempotency_key=key(), authorization_id=auth_id, amount=Decimal("25.00"))
    with pytest.raises(PaymentRejected) as rejected:
        await gateway.capture(
            idempotency_key=key(), authorization_id=auth_id, amount=Decimal("15.01")
        )
    assert rejected.value.status_code == 409
    await gateway.capture(idempotency_key=key(), authorization_id=auth_id, amount=Decimal("15.00"))
    auth = await gateway.get_authorization(auth_id)
    assert auth.captured_amount == Decimal("40.00")
    assert auth.status == "captured"


async def test_void(gateway: HttpPaymentGateway, admin: httpx.AsyncClient) -> None:
    auth_id = await authorized(gateway)
    voided = await gateway.void(idempotency_key=key(), authorization_id=auth_id)
    assert voided.status == "voided"
    # A second void with a new key is harmless and records nothing new.
    assert (await gateway.void(idempotency_key=key(), authorization_id=auth_id)).status == "voided"
    with pytest.raises(PaymentRejected) as rejected:
        await gateway.capture(idempotency_key=key(), authorization_id=auth_id, amount=Decimal("1"))
    assert rejected.value.status_code == 409
    (entry,) = await ledger(admin)
    assert len(entry["voids"]) == 1
    assert entry["captures"] == []


async def test_void_after_partial_capture_releases_the_rest(
    gateway: HttpPaymentGateway, admin: httpx.AsyncClient
) -> None:
    auth_id = await authorized(gateway, "40.00")
    await gateway.capture(idempotency_key=key(), authorization_id=auth_id, amount=Decimal("15.00"))
    released = await gateway.void(idempotency_key=key(), authorization_id=auth_id)
    assert released.status == "captured" and released.captured_amount == Decimal("15.00")
    with pytest.raises(PaymentRejected) as rejected:
        await gateway.capture(idempotency_key=key(), authorization_id=auth_id, amount=Decimal("1"))
    assert rejected.value.status_code == 409
    (entry,) = await ledger(admin)
    assert entry["released_amount"] == "25.00"


async def test_void_after_full_capture_is_refused(gateway: HttpPaymentGateway) -> None:
    auth_id = await authorized(gateway, "40.00")
    await gateway.capture(idempotency_key=key(), authorization_id=auth_id, amount=Decimal("40.00"))
    with pytest.raises(PaymentRejected) as rejected:
        await gateway.void(idempotency_key=key(), authorization_id=auth_id)
    assert rejected.value.status_code == 409


async def test_refund(gateway: HttpPaymentGateway) -> None:
    auth_id = await authorized(gateway, "40.00")
    await gateway.capture(idempotency_key=key(), authorization_id=auth_id, amount=Decimal("30.00"))
    refund = await gateway.refund(
        idempotency_key=key(), authorization_id=auth_id, amount=Decimal("10.00")
    )
    assert refund.amount == Decimal("10.00")
    assert refund.authorization_id == auth_id
    assert (await gateway.get_authorization(auth_id)).status == "partially_refunded"
    with pytest.raises(PaymentRejected) as rejected:
        await gateway.refund(idempotency_key=key(), authorization_id=auth_id, amount=Decimal("25"))
    assert rejected.value.status_code == 409
    await gateway.refund(idempotency_key=key(), authorization_id=auth_id, amount=Decimal("20.00"))
    auth = await gateway.get_authorization(auth_id)
    assert auth.status == "refunded"
    assert auth.refunded_amount == Decimal("30.00")


async def test_outage_changes_nothing_then_recovers(
    gateway: HttpPaymentGateway, admin: httpx.AsyncClient
) -> None:
    auth_id = await authorized(gateway)
    before = await ledger(admin)
    (await admin.post("/_admin/outage", json={"down": True})).raise_for_status()

    capture_key = key()
    with pytest.raises(GatewayUnavailable):
        await gateway.capture(
            idempotency_key=capture_key, authorization_id=auth_id, amount=Decimal("5.00")
        )
    with pytest.raises(GatewayUnavailable):
        await gateway.get_authorization(auth_id)
    assert await ledger(admin) == before

    (await admin.post("/_admin/outage", json={"down": False})).raise_for_status()
    capture = await gateway.capture(
        idempotency_key=capture_key, authorization_id=auth_id, amount=Decimal("5.00")
    )
    assert capture.amount == Decimal("5.00")


async def test_unreachable_gateway_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with HttpPaymentGateway(f"http://127.0.0.1:{port}", timeout=1.0) as gateway:
        with pytest.raises(GatewayUnavailable):
            await gateway.get_authorization("auth_x")


async def test_retried_capture_after_timeout_captures_once(
    base_url: str, gateway: HttpPaymentGateway, admin: httpx.AsyncClient
) -> None:
    auth_id = await authorized(gateway)
    (await admin.post("/_admin/latency", json={"seconds": 0.5})).raise_for_status()
    capture_key = key()
    impatient = HttpPaymentGateway(base_url, timeout=0.2)
    try:
        with pytest.raises(GatewayUnavailable):
            await impatient.capture(
                idempotency_key=capture_key, authorization_id=auth_id, amount=Decimal("40.00")
            )
    finally:
        await impatient.aclose()
    # The retry waits behind the same latency, so the first request has been handled when it ends.
    capture = await gateway.capture(
        idempotency_key=capture_key, authorization_id=auth_id, amount=Decimal("40.00")
    )
    (entry,) = await ledger(admin)
    assert [c["id"] for c in entry["captures"]] == [capture.id]
    assert entry["captured_amount"] == "40.00"


async def test_idempotency_key_is_required(admin: httpx.AsyncClient) -> None:
    response = await admin.post(
        "/v1/authorizations",
        json={"order_id": "o", "amount": "1.00", "currency": "EUR", "token": "tok_ok"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"


async def test_unknown_authorization_is_rejected(gateway: HttpPaymentGateway) -> None:
    with pytest.raises(PaymentRejected) as rejected:
        await gateway.get_authorization("auth_missing")
    assert rejected.value.status_code == 404


async def test_ledger_survives_a_restart(tmp_path: Any) -> None:
    state = tmp_path / "payment.db"
    with serve(create_app(state)) as url:
        async with HttpPaymentGateway(url) as gateway:
            auth_id = await authorized(gateway, "9.99")
    with serve(create_app(state)) as url:
        async with HttpPaymentGateway(url) as gateway:
            auth = await gateway.get_authorization(auth_id)
    assert auth.amount == Decimal("9.99")


async def test_transfer_notices_retry_until_acknowledged_and_wait_out_an_outage() -> None:
    """The gateway's webhooks come from an outbox: refused or unreachable, they are retried."""
    answers: list[int] = [503, 200]
    received: list[dict[str, Any]] = []
    merchant = FastAPI()

    @merchant.post("/webhooks/payments")
    async def hook(body: dict[str, Any]) -> Response:
        received.append(body)
        return Response(status_code=answers.pop(0) if answers else 200)

    with (
        serve(merchant) as merchant_url,
        serve(
            create_app(webhook_url=f"{merchant_url}/webhooks/payments", webhook_secret="s")
        ) as url,
    ):
        async with httpx.AsyncClient(base_url=url, timeout=5.0) as gw:
            await gw.post("/_admin/outage", json={"down": True})
            body = {"reference": "SO-1", "amount": "12.50", "currency": "USD"}
            made = (await gw.post("/_admin/transfers", json=body)).json()
            await asyncio.sleep(1.5)
            assert received == [], "nothing is sent while the gateway is down"
            await gw.post("/_admin/outage", json={"down": False})
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                listed = (await gw.get("/_admin/transfers")).json()["transfers"]
                if listed[0]["delivered"]:
                    break
                await asyncio.sleep(0.1)
    assert listed[0]["delivered"] and listed[0]["attempts"] == 2
    assert [r["transfer_id"] for r in received] == [made["transfer_id"]] * 2
    # The same event each time, so the merchant can recognise a resend.
    assert received[0] == received[1] and received[0]["amount"] == "12.50"
