"""Logistics activities: book and cancel shipments with the carrier, recorded in PostgreSQL."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from models.order import Address, DeliveryOption
from providers.carrier import CarrierRejected, HttpCarrier

CARRIER_REFUSED = "CarrierRefused"


class BookInput(BaseModel):
    order_id: str
    idempotency_key: str
    ship_to: Address
    items: list[dict[str, int | str]]
    # The service level the carrier ships at.
    service: DeliveryOption = DeliveryOption.STANDARD


class BookResult(BaseModel):
    shipment_id: str
    tracking_number: str


class CancelShipmentInput(BaseModel):
    order_id: str
    idempotency_key: str
    shipment_id: str


class LogisticsActivities:
    """Carrier calls; the carrier reports progress back through signed webhooks."""

    def __init__(self, carrier: HttpCarrier, webhook_url: str) -> None:
        self.carrier = carrier
        self.webhook_url = webhook_url

    @activity.defn(name="logistics.book")
    async def book(self, inp: BookInput) -> BookResult:
        """Book a parcel pick-up; the same key books the same parcel."""
        try:
            booking = await self.carrier.book(
                idempotency_key=inp.idempotency_key,
                reference=inp.order_id,
                ship_to=inp.ship_to.model_dump(),
                items=inp.items,
                webhook_url=self.webhook_url,
                service=inp.service.value,
            )
        except CarrierRejected as exc:
            raise ApplicationError(exc.reason, type=CARRIER_REFUSED, non_retryable=True) from exc
        return BookResult(shipment_id=booking.shipment_id, tracking_number=booking.tracking_number)

    @activity.defn(name="logistics.cancel")
    async def cancel(self, inp: CancelShipmentInput) -> None:
        """Cancel a booked parcel; refused once the carrier has picked it up."""
        try:
            await self.carrier.cancel(
                idempotency_key=inp.idempotency_key, shipment_id=inp.shipment_id
            )
        except CarrierRejected as exc:
            raise ApplicationError(exc.reason, type=CARRIER_REFUSED, non_retryable=True) from exc
