"""What a parcel's workflow does, shared by a split order's parcel and a merged shipment (§4).

The parcel is booked under its own number, so the carrier's webhooks reach its workflow
directly. When it leaves, each order in it takes its units off stock and captures its own
amount, once; every order in it hears of every step by signal.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import workflows.contract as c
    import workflows.steps as steps
    from activities.inventory import InventoryActivities, ShipInput
    from models.order import Address, DeliveryOption, ShipmentRecord


class ParcelBase:
    """Book, track, ship and capture one parcel for the orders in it."""

    _reference: str
    _ship_to: Address
    _policy: c.OrderPolicy
    _record: ShipmentRecord

    def _start_parcel_state(self) -> None:
        self._lock = asyncio.Lock()
        self._events: list[c.CarrierEvent] = []
        self._seen: set[str] = set()
        self._bookings = 0
        self._ended = False

    @workflow.query(name=c.QUERY_SHIPMENT_VIEW)
    def parcel_view(self) -> ShipmentRecord:
        """The parcel as it stands now."""
        return self._record.model_copy(deep=True)

    @workflow.signal(name=c.SIGNAL_CARRIER_EVENT)
    def carrier_event(self, event: c.CarrierEvent) -> None:
        """A tracking event from the carrier's webhook; duplicates are dropped."""
        if event.event_id not in self._seen:
            self._seen.add(event.event_id)
            self._events.append(event)

    # ---- what each kind of parcel says about itself ----------------------------------

    def _members(self) -> list[c.MergeMember]:
        """The orders whose goods are in the parcel."""
        raise NotImplementedError

    def _order_workflow(self, member: c.MergeMember) -> str:
        """Where a member's reports go."""
        raise NotImplementedError

    def _service(self) -> DeliveryOption:
        """Express when any order in the parcel paid for it: it cannot travel slower."""
        express = any(m.delivery == DeliveryOption.EXPRESS for m in self._members())
        return DeliveryOption.EXPRESS if express else DeliveryOption.STANDARD

    # ---- the shared steps ----------------------------------------------------------------

    async def _book(self) -> None:
        self._bookings += 1
        items: dict[str, int] = {}
        for m in self._members():
            for sku, q in m.lines.items():
                items[sku] = items.get(sku, 0) + q
        booking = await steps.book(
            self._reference,
            f"{self._reference}:ship:{self._bookings}",
            self._ship_to,
            items,
            self._policy,
            self._service(),
        )
        self._record.shipment_id = booking.shipment_id
        self._record.tracking_number = booking.tracking_number
        self._record.status = "booked"
        await self._report("booked", f"tracking {booking.tracking_number}")

    async def _release(self, member: c.MergeMember) -> None:
        await workflow.execute_local_activity_method(
            InventoryActivities.release_batch,
            ShipInput(order_id=member.order_id, batch=member.batch),
            start_to_close_timeout=steps.LOCAL,
        )

    async def _follow_carrier(self) -> None:
        while not self._ended:
            await workflow.wait_condition(lambda: bool(self._events) or self._ended)
            async with self._lock:
                while self._events and not self._ended:
                    await self._on_event(self._events.pop(0))

    async def _on_event(self, ev: c.CarrierEvent) -> None:
        rec = self._record
        if ev.shipment_id != rec.shipment_id:
            return  # a booking this parcel replaced
        rec.status = ev.type.lower()
        rec.events.append(ev.type)
        detail = f"{ev.type} {rec.tracking_number} {ev.detail}".strip()
        if ev.type in steps.SHIPPED_EVENTS | {"DELIVERED"} and not rec.left_warehouse:
            # The parcel left: each order's units leave the books and its amount is captured,
            # once (the capture key names the order and this parcel).
            for m in self._members():
                await workflow.execute_local_activity_method(
                    InventoryActivities.ship_batch,
                    ShipInput(order_id=m.order_id, batch=m.batch),
                    start_to_close_timeout=steps.LOCAL,
                )
                if m.authorization_id and m.amount > 0:
                    await steps.capture(
                        m.order_id,
                        f"{m.order_id}:capture:{self._reference}",
                        m.authorization_id,
                        m.amount,
                        self._policy,
                    )
                    m.captured = m.amount
            rec.captured = sum((m.captured for m in self._members()), Decimal("0"))
            rec.left_warehouse = True
            await self._report("left", detail, ev.type)
        elif ev.type != "DELIVERED" and ev.type not in steps.EXCEPTION_EVENTS:
            # Every tracking step reaches the order's history, not only the ones that move it.
            if workflow.patched(c.PATCH_PARCEL_TRACKING):
                await self._report("tracking", detail, ev.type)
        if ev.type == "DELIVERED":
            self._ended = True
            await self._report("delivered", detail, ev.type)
        elif ev.type in steps.EXCEPTION_EVENTS:
            await self._report("exception", detail, ev.type)

    async def _report(
        self,
        event: str,
        detail: str,
        carrier_event: str = "",
        only: c.MergeMember | None = None,
    ) -> None:
        for m in [only] if only is not None else self._members():
            await workflow.get_external_workflow_handle(self._order_workflow(m)).signal(
                c.SIGNAL_SHIPMENT_REPORT,
                c.ShipmentReport(
                    shipment_no=self._reference,
                    event=event,
                    detail=detail,
                    tracking_number=self._record.tracking_number,
                    carrier_shipment_id=self._record.shipment_id,
                    captured=m.captured,
                    carrier_event=carrier_event,
                ),
            )
