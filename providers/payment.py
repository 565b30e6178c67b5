"""HTTP client of the payment gateway, with its outcomes mapped to exceptions by retryability."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

import httpx
from pydantic import BaseModel, Field

from providers.json_http import JsonHttpClient, error_of


class PaymentError(Exception):
    """Base of every failure reported by the payment client."""


class PaymentDeclined(PaymentError):
    """The gateway said no (HTTP 402): a business outcome, never retried."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(f"{reason}: {message}" if message else reason)
        self.reason = reason
        self.message = message


class GatewayUnavailable(PaymentError):
    """The gateway could not answer (5xx, timeout, connection error): safe to retry."""


class PaymentRejected(PaymentError):
    """The gateway refused the request (4xx other than 402): a bug or a state conflict."""

    def __init__(self, reason: str, message: str = "", status_code: int = 0) -> None:
        super().__init__(f"{reason}: {message}" if message else reason)
        self.reason = reason
        self.message = message
        self.status_code = status_code


class TransferReceived(BaseModel):
    """The gateway's webhook for a bank transfer that arrived, quoting the order number."""

    event_id: str = Field(min_length=1, max_length=100)
    type: Literal["transfer.received"]
    transfer_id: str = Field(min_length=1, max_length=100)
    reference: str = Field(min_length=1, max_length=200)
    amount: Decimal = Field(gt=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    received_at: datetime


class Authorization(BaseModel):
    """A hold on the customer's card, and how much of it was captured and refunded."""

    id: str
    amount: Decimal
    currency: str
    status: str
    order_id: str = ""
    captured_amount: Decimal = Decimal("0")
    refunded_amount: Decimal = Decimal("0")


class Capture(BaseModel):
    """Money actually taken from an authorization."""

    id: str
    authorization_id: str
    amount: Decimal
    status: str


class Refund(BaseModel):
    """Money given back from what was captured."""

    id: str
    authorization_id: str
    amount: Decimal
    status: str


class HttpPaymentGateway(JsonHttpClient):
    """Talks to the payment gateway over HTTP; every mutating call carries an Idempotency-Key."""

    party = "the gateway"
    unavailable = GatewayUnavailable
    rejected = PaymentRejected

    def _refusal(self, response: httpx.Response) -> Exception | None:
        if response.status_code == 402:
            return PaymentDeclined(*error_of(response))
        return None

    async def authorize(
        self, *, idempotency_key: str, order_id: str, amount: Decimal, currency: str, token: str
    ) -> Authorization:
        """Place a hold of `amount` on the card behind `token`."""
        body = {"order_id": order_id, "amount": str(amount), "currency": currency, "token": token}
        return await self._call(
            "POST", "/v1/authorizations", Authorization, body=body, key=idempotency_key
        )

    async def capture(
        self, *, idempotency_key: str, authorization_id: str, amount: Decimal
    ) -> Capture:
        """Take `amount` of an authorization."""
        path = f"/v1/authorizations/{authorization_id}/capture"
        return await self._call(
            "POST", path, Capture, body={"amount": str(amount)}, key=idempotency_key
        )

    async def void(self, *, idempotency_key: str, authorization_id: str) -> Authorization:
        """Release what an authorization still holds (all of it, or the rest after captures)."""
        path = f"/v1/authorizations/{authorization_id}/void"
        return await self._call("POST", path, Authorization, body={}, key=idempotency_key)

    async def refund(
        self, *, idempotency_key: str, authorization_id: str, amount: Decimal
    ) -> Refund:
        """Give back `amount` of what was captured."""
        path = f"/v1/authorizations/{authorization_id}/refunds"
        return await self._call(
            "POST", path, Refund, body={"amount": str(amount)}, key=idempotency_key
        )

    async def get_authorization(self, authorization_id: str) -> Authorization:
        """The current state of an authorization."""
        return await self._call("GET", f"/v1/authorizations/{authorization_id}", Authorization)
