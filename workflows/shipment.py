"""ShipmentWorkflow: one parcel of a split order, a child of its OrderWorkflow (§4).

The child books its parcel, follows the carrier's tracking, takes its units off stock and
captures its share of the payment when the parcel leaves (see `ParcelBase`). It tells its parent
everything that matters by signal; the parent asks it to cancel or re-address by signal and waits
for the answer, because one workflow cannot send another an update.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    import workflows.contract as c
    import workflows.steps as steps
    from activities.logistics import CARRIER_REFUSED
    from models.order import ShipmentRecord
    from models.status import EditRefused
    from workflows.parcel import ParcelBase


@workflow.defn(name=c.SHIPMENT_WORKFLOW)
class ShipmentWorkflow(ParcelBase):
    """Pick, pack, book, track, and capture one parcel's share."""

    @workflow.init
    def __init__(self, inp: c.ShipmentInput) -> None:
        # Built from the input here, not in run(), so a signal that arrives with the start
        # finds the parcel there.
        self._inp = inp
        self._reference = inp.shipment_no
        self._ship_to = inp.ship_to
        self._policy = inp.policy
        self._start_parcel_state()
        self._member = c.MergeMember(
            order_id=inp.order_id,
            state="joined",
            batch=inp.batch,
            lines={ln.sku: ln.quantity for ln in inp.lines},
            warehouse=inp.warehouse,
            amount=inp.amount,
            authorization_id=inp.authorization_id,
            delivery=inp.delivery,
        )
        self._record = ShipmentRecord(
            shipment_id="",
            tracking_number="",
            warehouse=inp.warehouse,
            status="picking",
            batch=inp.batch,
            shipment_no=inp.shipment_no,
            lines=dict(self._member.lines),
            amount=inp.amount,
        )

    @property
    def record(self) -> ShipmentRecord:
        return self._record

    def _members(self) -> list[c.MergeMember]:
        return [self._member]

    def _order_workflow(self, member: c.MergeMember) -> str:
        parent = workflow.info().parent
        return parent.workflow_id if parent else c.order_workflow_id(member.order_id)

    @workflow.signal(name=c.SIGNAL_SHIPMENT_CANCEL)
    async def cancel(self, req: c.ShipmentCancel) -> None:
        """Stop the parcel if it has not left; the answer goes to the parent as a report."""
        async with self._lock:
            try:
                self._check_not_left()
                if self.record.tracking_number:
                    await steps.cancel_booking(
                        self._reference, self.record.shipment_id, self._policy
                    )
            except EditRefused as exc:
                await self._report("cancel_refused", f"{exc.rule}: {exc.message}")
                return
            await self._release(self._member)
            self.record.status = "cancelled"
            self._ended = True
            await self._report("cancelled", req.reason or f"cancelled by {req.actor}")

    @workflow.signal(name=c.SIGNAL_SHIPMENT_ADDRESS)
    async def change_address(self, req: c.ShipmentAddress) -> None:
        """Send the parcel to a new address: rebook it if it is booked and has not left."""
        async with self._lock:
            try:
                self._check_not_left()
                self._ship_to = req.ship_to
                if self.record.tracking_number:
                    old = self.record.tracking_number
                    await steps.cancel_booking(
                        self._reference, self.record.shipment_id, self._policy
                    )
                    if workflow.patched(c.PATCH_PARCEL_TRACKING):
                        await self._report("booking_cancelled", f"tracking {old}: rebooked")
                    await self._book()
            except EditRefused as exc:
                await self._report("address_refused", f"{exc.rule}: {exc.message}")
                return
            await self._report("address_changed", f"to {req.ship_to.city}, {req.ship_to.country}")

    @workflow.signal(name=c.SIGNAL_SHIPMENT_WRITE_OFF)
    async def write_off(self) -> None:
        """Staff settled this parcel's carrier exception: it is done, whatever comes next."""
        async with self._lock:
            if not self._ended:
                self.record.status = "written_off"
                self._ended = True

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
                    await self._release(self._member)
                    self.record.status = "failed"
                    self._ended = True
                    await self._report("failed", f"carrier refused: {steps.error_message(exc)}")
        await self._follow_carrier()
        await workflow.wait_condition(workflow.all_handlers_finished)
        status = self.record.status
        return c.ShipmentResult(
            shipment_no=inp.shipment_no,
            status=status if status in ("cancelled", "failed", "written_off") else "delivered",
            captured=self.record.captured,
        )

    def _check_not_left(self) -> None:
        if self._ended:
            raise EditRefused("parcel_ended", f"the parcel is {self.record.status}")
        if self.record.left_warehouse:
            raise EditRefused(
                "parcel_already_left",
                f"parcel {self._reference} has left the warehouse "
                f"(tracking {self.record.tracking_number})",
            )
