"""ConsolidationWorkflow: several open orders of one customer shipped as one parcel (§4).

It invites each order; an order joins (with its goods, warehouse and payment) or says why not.
With at least two members from one warehouse it waits out the pick delay (members may still
leave), then books one parcel and follows it like any parcel (`ParcelBase`): each order keeps
its own number, payment and history, hears of every step, and captures its own amount when the
parcel leaves. A merge that cannot form releases the orders that joined, which go on alone.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    import workflows.contract as c
    import workflows.steps as steps
    from activities.logistics import CARRIER_REFUSED
    from models.order import ShipmentRecord
    from workflows.parcel import ParcelBase

# How long the consolidation waits for orders to answer its invitation.
ANSWER_TIMEOUT = timedelta(seconds=60)


@workflow.defn(name=c.CONSOLIDATION_WORKFLOW)
class ConsolidationWorkflow(ParcelBase):
    """One parcel for several orders; each order pays and keeps its history on its own."""

    @workflow.init
    def __init__(self, inp: c.ConsolidationInput) -> None:
        self._inp = inp
        self._reference = inp.consolidation_id
        self._ship_to = inp.ship_to
        self._policy = inp.policy
        self._start_parcel_state()
        self._status = "forming"
        self._reason = inp.reason
        # Orders that joined but must be let go (a mismatch, another warehouse, no merge).
        self._to_release: list[c.MergeMember] = []
        self._all: dict[str, c.MergeMember] = {
            oid: c.MergeMember(order_id=oid) for oid in dict.fromkeys(inp.order_ids)
        }
        self._record = ShipmentRecord(
            shipment_id="", tracking_number="", status="forming", shipment_no=inp.consolidation_id
        )

    @workflow.query(name=c.QUERY_CONSOLIDATION_VIEW)
    def consolidation_view(self) -> c.ConsolidationView:
        """The merged shipment with its members."""
        return c.ConsolidationView(
            consolidation_id=self._inp.consolidation_id,
            status=self._status,
            customer_id=self._inp.customer_id,
            ship_to=self._ship_to,
            members=[m.model_copy() for m in self._all.values()],
            parcel=self._record.model_copy(deep=True),
            reason=self._reason,
        )

    @workflow.update(name=c.UPDATE_MERGE_FORMED)
    async def formed(self) -> c.ConsolidationView:
        """Answers once every order has answered: the merge formed, or was dissolved."""
        await workflow.wait_condition(lambda: self._status != "forming")
        return self.consolidation_view()

    @workflow.signal(name=c.SIGNAL_MERGE_ANSWER)
    def answer(self, a: c.MergeAnswer) -> None:
        """An order joins, or says why it cannot."""
        m = self._all.get(a.order_id)
        if m is None or m.state != "invited":
            return
        problem = a.reason
        if a.joined and a.customer_id != self._inp.customer_id:
            problem = "merge_different_customer: the order belongs to another customer"
        elif a.joined and a.ship_to != self._inp.ship_to:
            problem = "merge_different_address: the order ships to another address"
        if a.joined and not problem:
            m.state = "joined"
            m.lines = a.lines
            m.warehouse = a.warehouse
            m.amount = a.amount
            m.authorization_id = a.authorization_id
            m.delivery = a.delivery
        else:
            m.state = "refused"
            m.reason = problem
            if a.joined:
                self._to_release.append(m)

    @workflow.signal(name=c.SIGNAL_MERGE_WITHDRAW)
    async def withdraw(self, req: c.MergeWithdraw) -> None:
        """An order leaves the merge (it is being cancelled); refused once picking started."""
        async with self._lock:
            m = self._all.get(req.order_id)
            if m is None or m.state != "joined":
                return
            if self._status not in ("forming", "formed"):
                await self._report(
                    "cancel_refused",
                    f"merged_parcel_picking: the merged parcel {self._reference} is being "
                    "picked; its goods can no longer be taken out",
                    only=m,
                )
                return
            m.state = "withdrawn"
            m.reason = req.reason or f"withdrawn by {req.actor}"
            await self._report("cancelled", f"taken out of {self._reference}", only=m)

    def _members(self) -> list[c.MergeMember]:
        return [m for m in self._all.values() if m.state == "joined"]

    def _order_workflow(self, member: c.MergeMember) -> str:
        return c.order_workflow_id(member.order_id)

    @workflow.run
    async def run(self, inp: c.ConsolidationInput) -> c.ConsolidationView:
        """Form the merge, wait out the pick delay, then ship the one parcel."""
        for m in self._all.values():
            try:
                await workflow.get_external_workflow_handle(c.order_workflow_id(m.order_id)).signal(
                    c.SIGNAL_MERGE_INVITE, c.MergeInvite(consolidation_id=inp.consolidation_id)
                )
            except Exception:
                # The order's workflow has ended: it cannot join.
                m.state = "refused"
                m.reason = "merge_order_closed: the order is no longer open"
        try:
            await workflow.wait_condition(
                lambda: all(m.state != "invited" for m in self._all.values()),
                timeout=ANSWER_TIMEOUT,
            )
        except TimeoutError:
            for m in self._all.values():
                if m.state == "invited":
                    m.state = "refused"
                    m.reason = "merge_no_answer: the order did not answer"
        self._keep_one_warehouse()
        if len(self._members()) < 2:
            return await self._dissolve("fewer than two orders could be merged")
        await self._release_members()
        self._status = "formed"
        self._record.warehouse = self._members()[0].warehouse
        self._record.lines = self._lines()

        # Members may still leave (cancel) until picking starts.
        if inp.policy.warehouse_release_seconds > 0:
            try:
                await workflow.wait_condition(
                    lambda: not self._members(),
                    timeout=timedelta(seconds=inp.policy.warehouse_release_seconds),
                )
            except TimeoutError:
                pass
        async with self._lock:
            if not self._members():
                self._status = "dissolved"
                self._reason = "every order left the merge"
                return self.consolidation_view()
            self._status = "picking"
            self._record.status = "picking"
            self._record.lines = self._lines()
            await self._report("picking", f"picked with {self._reference}")
            try:
                await self._book()
            except ActivityError as exc:
                if steps.error_type(exc) != CARRIER_REFUSED:
                    raise
                for m in self._members():
                    await self._release(m)
                self._record.status = "failed"
                self._ended = True
                await self._report("failed", f"carrier refused: {steps.error_message(exc)}")
            self._status = "shipping"
        await self._follow_carrier()
        if self._record.status == "delivered":
            self._status = "delivered"
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.consolidation_view()

    def _lines(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for m in self._members():
            for sku, q in m.lines.items():
                total[sku] = total.get(sku, 0) + q
        return total

    def _keep_one_warehouse(self) -> None:
        """A parcel leaves from one warehouse: keep the largest group of members."""
        groups: dict[str, list[c.MergeMember]] = {}
        for m in self._members():
            groups.setdefault(m.warehouse, []).append(m)
        if len(groups) <= 1:
            return
        keep = max(groups, key=lambda wh: (len(groups[wh]), -list(groups).index(wh)))
        for wh, members in groups.items():
            if wh != keep:
                for m in members:
                    m.state = "released"
                    m.reason = f"merge_different_warehouse: its stock is in {wh}, not {keep}"
                    self._to_release.append(m)

    async def _dissolve(self, reason: str) -> c.ConsolidationView:
        for m in self._members():
            m.state = "released"
            m.reason = reason
            self._to_release.append(m)
        self._status = "dissolved"
        self._reason = reason
        await self._release_members()
        return self.consolidation_view()

    async def _release_members(self) -> None:
        for m in self._to_release:
            await workflow.get_external_workflow_handle(c.order_workflow_id(m.order_id)).signal(
                c.SIGNAL_MERGE_RELEASE,
                c.MergeRelease(consolidation_id=self._reference, reason=m.reason),
            )
        self._to_release = []
