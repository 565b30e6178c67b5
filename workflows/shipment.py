"""ShipmentWorkflow: one parcel of a split order, a child of its OrderWorkflow (§4).

The child picks, packs and books its parcel, follows the carrier's tracking (its parcel number
is the carrier reference, so webhooks reach it directly), takes its units off stock and captures
its share of the payment when the parcel leaves. It tells its parent everything that matters by
signal; the parent asks it to cancel or re-address by signal and waits for the answer.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.inventory import InventoryActivities, ShipInput
    from activities.logistics import CARRIER_REFUSED
    from models.order import ShipmentRecord
    from models.status import EditRefused
    from workflows import contract as c
    from workflows import steps


@workflow.defn(name=c.SHIPMENT_WORKFLOW)
class ShipmentWorkflow:
    """Pick, pack, book, track, and capture one parcel's share."""

    @workflow.init
    def __init__(self, inp: c.ShipmentInput) -> None:
        # Built from the input here, not in run(), so a signal that arrives with the start
        # finds the parcel there.
        self._inp = inp
        self._lock = asyncio.Lock()
        self._events: list[c.CarrierEvent] = []
        self._seen: set[str] = set()
        self._record = ShipmentRecord(
            shipment_id="",
            tracking_number="",
            warehouse=inp.warehouse,
            status="picking",
            batch=inp.batch,
            shipment_no=inp.shipment_no,
            lines={ln.sku: ln.quantity for ln in inp.lines},
            amount=inp.amount,
        )
        self._bookings = 0
        self._ended = False

    @workflow.query(name=c.QUERY_SHIPMENT_VIEW)
    def view(self) -> ShipmentRecord:
        """The parcel as it stands now."""
        return self.record.model_copy(deep=True)

    @workflow.signal(name=c.SIGNAL_CARRIER_EVENT)
    def carrier_event(self, event: c.CarrierEvent) -> None:
        """A tracking event from the carrier's webhook; duplicates are dropped."""
        if event.event_id not in self._seen:
            self._seen.add(event.event_id)
            self._events.append(event)

    @workflow.signal(name=c.SIGNAL_SHIPMENT_CANCEL)
    async def cancel(self, req: c.ShipmentCancel) -> None:
        """Stop the parcel if it has not left; the answer goes to the parent as a report."""
        async with self._lock:
            try:
                self._check_not_left()
                if self.record.tracking_number:
                    await steps.cancel_booking(
                        self._inp.shipment_no, self.record.shipment_id, self._inp.policy
                    )
            except EditRefused as exc:
                await self._report("cancel_refused", f"{exc.rule}: {exc.message}")
                return
            await self._release()
            self.record.status = "cancelled"
            self._ended = True
            await self._report("cancelled", req.reason or f"cancelled by {req.actor}")

    @workflow.signal(name=c.SIGNAL_SHIPMENT_ADDRESS)
    async def change_address(self, req: c.ShipmentAddress) -> None:
        """Send the parcel to a new address: rebook it if it is booked and has not left."""
        async with self._lock:
            try:
                self._check_not_left()
                self._inp.ship_to = req.ship_to
                if self.record.tracking_number:
                    await steps.cancel_booking(
                        self._inp.shipment_no, self.record.shipment_id, self._inp.policy
                    )
                    await self._book()
            except EditRefused as exc:
                await self._report("address_refused", f"{exc.rule}: {exc.message}")
                return
            await self._report("address_changed", f"to {req.ship_to.city}, {req.ship_to.country}")

    @workflow.run
    async def run(self, inp: c.ShipmentInput) -> c.ShipmentResult:
        """Carry the parcel from pick ticket to delivery (or cancellation)."""
        async with self._lock:
            if not self._ended:
                try:
                    await self._book()
                except ActivityError as exc:
                    if steps.error_type(exc) != CARRIER_REFUSED:
                        raise
                    await self._release()
                    self.record.status = "failed"
                    self._ended = True
                    await self._report("failed", f"carrier refused: {steps.error_message(exc)}")
        while not self._ended:
            await workflow.wait_condition(lambda: bool(self._events) or self._ended)
            async with self._lock:
                while self._events and not self._ended:
                    await self._on_event(self._events.pop(0))
        await workflow.wait_condition(workflow.all_handlers_finished)
        status = self.record.status
        return c.ShipmentResult(
            shipment_no=inp.shipment_no,
            status=status if status in ("cancelled", "failed") else "delivered",
            captured=self.record.captured,
        )

    @property
    def record(self) -> ShipmentRecord:
        return self._record

    def _check_not_left(self) -> None:
        if self._ended:
            raise EditRefused("parcel_ended", f"the parcel is {self.record.status}")
        if self.record.left_warehouse:
            raise EditRefused(
                "parcel_already_left",
                f"parcel {self._inp.shipment_no} has left the warehouse "
                f"(tracking {self.record.tracking_number})",
            )

    async def _book(self) -> None:
        self._bookings += 1
        booking = await steps.book(
            self._inp.shipment_no,
            f"{self._inp.shipment_no}:ship:{self._bookings}",
            self._inp.ship_to,
            self.record.lines,
            self._inp.policy,
        )
        self.record.shipment_id = booking.shipment_id
        self.record.tracking_number = booking.tracking_number
        self.record.status = "booked"
        await self._report("booked", f"tracking {booking.tracking_number}")

    async def _release(self) -> None:
        await workflow.execute_local_activity_method(
            InventoryActivities.release_batch,
            ShipInput(order_id=self._inp.order_id, batch=self._inp.batch),
            start_to_close_timeout=steps.LOCAL,
        )

    async def _on_event(self, ev: c.CarrierEvent) -> None:
        rec = self.record
        if ev.shipment_id != rec.shipment_id:
            return  # a booking this parcel replaced
        rec.status = ev.type.lower()
        rec.events.append(ev.type)
        detail = f"{ev.type} {rec.tracking_number} {ev.detail}".strip()
        if ev.type in steps.SHIPPED_EVENTS | {"DELIVERED"} and not rec.left_warehouse:
            # The parcel left: its units leave the books and its share is captured, once.
            await workflow.execute_local_activity_method(
                InventoryActivities.ship_batch,
                ShipInput(order_id=self._inp.order_id, batch=self._inp.batch),
                start_to_close_timeout=steps.LOCAL,
            )
            if self._inp.authorization_id and self._inp.amount > 0:
                await steps.capture(
                    self._inp.order_id,
                    f"{self._inp.order_id}:capture:{self._inp.shipment_no}",
                    self._inp.authorization_id,
                    self._inp.amount,
                    self._inp.policy,
                )
                rec.captured = self._inp.amount
            rec.left_warehouse = True
            await self._report("left", detail, ev.type)
        if ev.type == "DELIVERED":
            self._ended = True
            await self._report("delivered", detail, ev.type)
        elif ev.type in steps.EXCEPTION_EVENTS:
            await self._report("exception", detail, ev.type)

    async def _report(self, event: str, detail: str, carrier_event: str = "") -> None:
        parent = workflow.info().parent
        if parent is None:
            return
        await workflow.get_external_workflow_handle(parent.workflow_id).signal(
            c.SIGNAL_SHIPMENT_REPORT,
            c.ShipmentReport(
                shipment_no=self._inp.shipment_no,
                event=event,
                detail=detail,
                tracking_number=self.record.tracking_number,
                carrier_shipment_id=self.record.shipment_id,
                captured=self.record.captured,
                carrier_event=carrier_event,
            ),
        )
