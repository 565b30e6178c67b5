"""HTTP client of the carrier, with its outcomes mapped to exceptions by retryability."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from providers.json_http import JsonHttpClient


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
    service: str = "standard"


class TrackingEvent(BaseModel):
    """One step of a parcel's journey, as the carrier reports it."""

    event_id: str
    type: str
    occurred_at: str
    detail: str = ""


class Shipment(Booking):
    """A booked parcel with every tracking event emitted so far."""

    events: list[TrackingEvent] = []


class HttpCarrier(JsonHttpClient):
    """Talks to the carrier over HTTP; every mutating call carries an Idempotency-Key."""

    party = "the carrier"
    unavailable = CarrierUnavailable
    rejected = CarrierRejected

    async def book(
        self,
        *,
        idempotency_key: str,
        reference: str,
        ship_to: dict[str, Any],
        items: list[dict[str, Any]],
        webhook_url: str,
        service: str = "standard",
    ) -> Booking:
        """Book a parcel at a service level (standard or express); tracking events will be
        posted to `webhook_url`."""
        body = {
            "reference": reference,
            "ship_to": ship_to,
            "items": items,
            "webhook_url": webhook_url,
            "service": service,
        }
        return await self._call("POST", "/v1/shipments", Booking, body=body, key=idempotency_key)

    async def cancel(self, *, idempotency_key: str, shipment_id: str) -> Booking:
        """Cancel a parcel that was not picked up yet."""
        path = f"/v1/shipments/{shipment_id}/cancel"
        return await self._call("POST", path, Booking, body={}, key=idempotency_key)

    async def get(self, shipment_id: str) -> Shipment:
        """The parcel with its tracking events."""
        return await self._call("GET", f"/v1/shipments/{shipment_id}", Shipment)
