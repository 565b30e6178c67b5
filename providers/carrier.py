"""HTTP client of the carrier, with its outcomes mapped to exceptions by retryability."""

from __future__ import annotations

from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

_M = TypeVar("_M", bound=BaseModel)


class CarrierError(Exception):
    """Base of every failure reported by the carrier client."""


class CarrierUnavailable(CarrierError):
    """The carrier could not answer (5xx, timeout, connection error): safe to retry."""


class CarrierRejected(CarrierError):
    """The carrier refused the request (4xx), e.g. cancelling a parcel already picked up."""

    def __init__(self, reason: str, message: str = "", status_code: int = 0) -> None:
        super().__init__(f"{reason}: {message}" if message else reason)
        self.reason = reason
        self.message = message
        self.status_code = status_code


class Booking(BaseModel):
    """A parcel booked with the carrier."""

    shipment_id: str
    tracking_number: str
    status: str
    reference: str = ""


class TrackingEvent(BaseModel):
    """One step of a parcel's journey, as the carrier reports it."""

    event_id: str
    type: str
    occurred_at: str
    detail: str = ""


class Shipment(Booking):
    """A booked parcel with every tracking event emitted so far."""

    events: list[TrackingEvent] = []


def _error_of(response: httpx.Response) -> tuple[str, str]:
    """The carrier's (code, message), tolerating bodies that are not its error format."""
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


class HttpCarrier:
    """Talks to the carrier over HTTP; every mutating call carries an Idempotency-Key."""

    def __init__(
        self, base_url: str, client: httpx.AsyncClient | None = None, timeout: float = 5.0
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=timeout)
        self._timeout = timeout

    async def book(
        self,
        *,
        idempotency_key: str,
        reference: str,
        ship_to: dict[str, Any],
        items: list[dict[str, Any]],
        webhook_url: str,
    ) -> Booking:
        """Book a parcel; tracking events will be posted to `webhook_url`."""
        body = {
            "reference": reference,
            "ship_to": ship_to,
            "items": items,
            "webhook_url": webhook_url,
        }
        return await self._call("POST", "/v1/shipments", Booking, body=body, key=idempotency_key)

    async def cancel(self, *, idempotency_key: str, shipment_id: str) -> Booking:
        """Cancel a parcel that was not picked up yet."""
        path = f"/v1/shipments/{shipment_id}/cancel"
        return await self._call("POST", path, Booking, body={}, key=idempotency_key)

    async def get(self, shipment_id: str) -> Shipment:
        """The parcel with its tracking events."""
        return await self._call("GET", f"/v1/shipments/{shipment_id}", Shipment)

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> HttpCarrier:
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
            raise CarrierUnavailable(f"timeout calling {method} {path}") from exc
        except httpx.TransportError as exc:
            raise CarrierUnavailable(f"cannot reach the carrier: {exc!r}") from exc
        status = response.status_code
        # 429 means "later", so it is retried like an outage.
        if status >= 500 or status == 429:
            code, message = _error_of(response)
            raise CarrierUnavailable(f"carrier answered {status}: {code} {message}".strip())
        if status >= 400:
            code, message = _error_of(response)
            raise CarrierRejected(code, message, status_code=status)
        try:
            return model.model_validate(response.json())
        except (ValueError, ValidationError) as exc:
            # A garbled success is retried: the idempotency key makes the retry harmless.
            raise CarrierUnavailable(f"unreadable carrier answer to {method} {path}") from exc
