"""HTTP client of the payment gateway, with its outcomes mapped to exceptions by retryability."""

from __future__ import annotations

from decimal import Decimal
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

_M = TypeVar("_M", bound=BaseModel)


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


def _error_of(response: httpx.Response) -> tuple[str, str]:
    """The gateway's (code, message), tolerating bodies that are not its error format."""
    try:
        payload = response.json()
    except ValueError:
        return f"http_{response.status_code}", response.text[:200]
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            return str(error.get("code", f"http_{response.status_code}")), str(
                error.get("message", "")
            )
        if "detail" in payload:
            return f"http_{response.status_code}", str(payload["detail"])[:200]
    return f"http_{response.status_code}", str(payload)[:200]


class HttpPaymentGateway:
    """Talks to the payment gateway over HTTP; every mutating call carries an Idempotency-Key."""

    def __init__(
        self, base_url: str, client: httpx.AsyncClient | None = None, timeout: float = 5.0
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=timeout)
        self._timeout = timeout

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
        """Release an authorization of which nothing was captured."""
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

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> HttpPaymentGateway:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        model: type[_M],
        *,
        body: dict[str, Any] | None = None,
        key: str | None = None,
    ) -> _M:
        headers = {"Idempotency-Key": key} if key is not None else {}
        try:
            response = await self._client.request(
                method, self._base_url + path, json=body, headers=headers, timeout=self._timeout
            )
        except httpx.TimeoutException as exc:
            raise GatewayUnavailable(f"timeout calling {method} {path}") from exc
        except httpx.TransportError as exc:
            raise GatewayUnavailable(f"cannot reach the gateway: {exc!r}") from exc
        status = response.status_code
        # 429 means "later", so it is retried like an outage.
        if status >= 500 or status == 429:
            code, message = _error_of(response)
            raise GatewayUnavailable(f"gateway answered {status}: {code} {message}".strip())
        if status == 402:
            raise PaymentDeclined(*_error_of(response))
        if status >= 400:
            code, message = _error_of(response)
            raise PaymentRejected(code, message, status_code=status)
        try:
            return model.model_validate(response.json())
        except (ValueError, ValidationError) as exc:
            # A garbled success is retried: the idempotency key makes the retry harmless.
            raise GatewayUnavailable(f"unreadable gateway answer to {method} {path}") from exc
