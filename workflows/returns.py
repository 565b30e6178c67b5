"""ReturnWorkflow: one return of an order, from request to refund or exchange (§5)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    import workflows.contract as c
    import workflows.steps as steps
    from activities.inventory import InventoryActivities, PriceInput, ReturnStockInput
    from activities.records import RecordActivities, SystemOrder
    from models.books import ZERO, ExchangeSettlement, settle_exchange
    from models.order import PaymentInput, PaymentMethod, ShipmentRecord
    from models.order_number import make_order_number
    from models.returns import ReturnEvent, ReturnView, value_exchange
    from models.status import EditRefused


SignalT = TypeVar("SignalT", c.ReturnDecision, c.ReturnReceipt)


def _refusal(rule: str, message: str) -> ApplicationError:
    return steps.refusal(EditRefused(rule, message))


@workflow.defn(name=c.RETURN_WORKFLOW)
class ReturnWorkflow:
    """Waits for staff approval, the parcel back, inspection; then refunds or exchanges."""

    @workflow.init
    def __init__(self, inp: c.ReturnInput) -> None:
        # Made here, before any handler runs: a signal may come with the return's start.
        self._decision: c.ReturnDecision | None = None
        self._receipt: c.ReturnReceipt | None = None
        self._events: list[c.CarrierEvent] = []
        self._seen: set[str] = set()
        self._inp = inp
        self._view = ReturnView(
            return_id=inp.return_id,
            order_id=inp.order_id,
            status="REQUESTED",
            kind=inp.kind,
            lines=inp.lines,
            reason=inp.reason,
            evidence=inp.evidence,
            refund_amount=inp.refund_amount,
            currency=inp.currency,
            created_at=inp.requested_at,
            updated_at=workflow.now(),
        )
        if inp.exchange is not None and inp.payment is not None:
            # Staff decide seeing what the goods sent back are worth against the goods wanted.
            self._view.exchange = value_exchange(
                inp.exchange,
                inp.refund_amount,
                inp.payment.method,
                by_gateway=inp.authorization_id is not None,
            )
        self._note("requested", inp.actor, inp.reason)

    @workflow.query(name=c.QUERY_RETURN_VIEW)
    def view(self) -> ReturnView:
        """The return as it stands now."""
        return self.view_.model_copy(deep=True)

    @workflow.update(name=c.UPDATE_RETURN_DECISION)
    async def decide(self, req: c.ReturnDecision) -> ReturnView:
        """Staff approve or reject the return."""
        self._take_decision(req)
        return self.view()

    @decide.validator
    def _check_decision(self, req: c.ReturnDecision) -> None:
        if self.view_.status != "REQUESTED" or self._decision is not None:
            raise _refusal("not_awaiting_decision", f"the return is {self.view_.status}")

    @workflow.signal(name=c.SIGNAL_RETURN_DECISION)
    def decision_signal(self, *args: Any) -> None:
        """The same decision as the update; a refused one is kept in the return's history."""
        req = self._signalled(c.SIGNAL_RETURN_DECISION, args, c.ReturnDecision)
        if req is None:
            return
        try:
            self._check_decision(req)
        except ApplicationError as exc:
            self._note("signal_refused", req.actor, f"{c.SIGNAL_RETURN_DECISION}: {exc.message}")
            return
        self._take_decision(req)

    @workflow.update(name=c.UPDATE_RETURN_RECEIPT)
    async def receive(self, req: c.ReturnReceipt) -> ReturnView:
        """The warehouse inspected the parcel that came back."""
        self._take_receipt(req)
        return self.view()

    @receive.validator
    def _check_receipt(self, req: c.ReturnReceipt) -> None:
        if self.view_.status != "RECEIVED" or self._receipt is not None:
            raise _refusal("not_awaiting_inspection", f"the return is {self.view_.status}")

    @workflow.signal(name=c.SIGNAL_RETURN_RECEIPT)
    def receipt_signal(self, *args: Any) -> None:
        """The same inspection result as the update; a refused one is kept in the history."""
        req = self._signalled(c.SIGNAL_RETURN_RECEIPT, args, c.ReturnReceipt)
        if req is None:
            return
        try:
            self._check_receipt(req)
        except ApplicationError as exc:
            self._note("signal_refused", req.actor, f"{c.SIGNAL_RETURN_RECEIPT}: {exc.message}")
            return
        self._take_receipt(req)

    def _signalled(self, name: str, args: tuple[Any, ...], model: type[SignalT]) -> SignalT | None:
        """The signal's input as its update takes it, or None when it is not (noted). Signals
        take their input untyped: typed, one that does not decode is dropped with a log line.
        The actor is whatever the sender typed, so the history marks it as a claim."""
        try:
            if len(args) != 1:
                raise ValueError(f"expected one input, got {len(args)}")
            req = model.model_validate(args[0])
        except (ValueError, TypeError) as exc:
            self._note("signal_refused", "unknown (claimed)", f"{name}: malformed: {exc}"[:2000])
            return None
        req.actor = f"{req.actor} (claimed)"[:100]
        return req

    @workflow.signal(name=c.SIGNAL_CARRIER_EVENT)
    def carrier_event(self, event: c.CarrierEvent) -> None:
        """Tracking of the parcel on its way back; duplicates are dropped."""
        if event.event_id not in self._seen:
            self._seen.add(event.event_id)
            self._events.append(event)

    def _take_decision(self, req: c.ReturnDecision) -> None:
        self._decision = req
        self._note(f"decision:{req.decision}", req.actor, req.note)

    def _take_receipt(self, req: c.ReturnReceipt) -> None:
        self._receipt = req
        self.view_.condition = req.condition
        self._note(f"inspected:{req.condition}", req.actor, req.note)

    @workflow.run
    async def run(self, inp: c.ReturnInput) -> c.ReturnResult:
        """Carry one return to its end and tell the order how it ended."""
        # Written within the first task, so the return is known to the API as soon as the order
        # names it; a retry of that task can only write the same request again.
        await self._save(known_at_once=True)

        try:
            await workflow.wait_condition(
                lambda: self._decision is not None,
                timeout=timedelta(seconds=inp.policy.return_decision_seconds),
            )
        except TimeoutError:
            self._decision = c.ReturnDecision(
                decision="reject", note="not decided in time", actor="system"
            )
        assert self._decision is not None
        if self._decision.decision == "reject":
            await self._set("REJECTED", self._decision.actor, self._decision.note)
            return c.ReturnResult(return_id=inp.return_id, status="rejected")

        await self._book_pickup()
        await self._set("APPROVED", self._decision.actor, "return label sent")
        while self.view_.status != "RECEIVED":
            await workflow.wait_condition(lambda: bool(self._events))
            await self._on_event(self._events.pop(0))
        await workflow.wait_condition(lambda: self._receipt is not None)
        assert self._receipt is not None
        if self._receipt.condition == "sellable":
            await steps.write(
                InventoryActivities.restock_return,
                ReturnStockInput(
                    return_id=inp.return_id,
                    warehouse_id=inp.warehouse,
                    lines={ln.sku: ln.quantity for ln in inp.lines},
                ),
                after_commit=workflow.patched(c.PATCH_RETURN_WRITES_AFTER_COMMIT),
            )
            self._note("restocked", "warehouse", inp.warehouse)
        else:
            self._note("written_off", "warehouse", "damaged goods are not put back on sale")

        if inp.kind == "exchange":
            new_order = await self._start_exchange()
            self.view_.exchange_order_id = new_order
            return await self._settle_exchange(new_order)
        if inp.authorization_id is None:
            await self._set("REFUND_DUE", "system", "paid outside the gateway: refund by hand")
            return c.ReturnResult(return_id=inp.return_id, status="refund_due")
        await steps.refund(
            inp.order_id,
            f"{inp.return_id}:refund",
            inp.authorization_id,
            inp.refund_amount,
            inp.policy,
        )
        self.view_.refunded = inp.refund_amount
        await self._set("REFUNDED", "gateway", f"{inp.refund_amount} {inp.currency}")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return c.ReturnResult(
            return_id=inp.return_id, status="refunded", refunded=inp.refund_amount
        )

    async def _settle_exchange(self, new_order: str) -> c.ReturnResult:
        """Give back what the credit exceeds the new goods by; the exchange order itself asks
        for what they exceed the credit by."""
        inp = self._inp
        back = self._settlement().back if inp.exchange is not None else ZERO
        status: Literal["exchanged", "refund_due"] = "exchanged"
        reason = f"exchange order {new_order}"
        if back > 0 and inp.authorization_id is not None:
            await steps.refund(
                inp.order_id,
                f"{inp.return_id}:difference",
                inp.authorization_id,
                back,
                inp.policy,
            )
            self.view_.refunded = back
            reason += f"; {back} {inp.currency} refunded"
        elif back > 0:
            status = "refund_due"
            reason += f"; refund {back} {inp.currency} by hand"
        await self._set("EXCHANGED", "system", reason)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return c.ReturnResult(
            return_id=inp.return_id,
            status=status,
            refunded=self.view_.refunded,
            exchange_order_id=new_order,
        )

    def _settlement(self) -> ExchangeSettlement:
        assert self._inp.exchange is not None
        return settle_exchange(self._inp.refund_amount, self._inp.exchange.totals.total)

    def _exchange_payment(self, due: Decimal) -> PaymentInput:
        """The credit pays first; what is left is paid the way the original order was (a
        card or wallet with its token, a transfer or invoice), by invoice after an exchange."""
        original = self._inp.payment
        if due <= 0 or original is None:
            return PaymentInput(method=PaymentMethod.EXCHANGE_CREDIT)
        if original.method.needs_token and original.token:
            return PaymentInput(method=original.method, token=original.token)
        if original.method.pays_later:
            return PaymentInput(method=original.method)
        return PaymentInput(method=PaymentMethod.INVOICE)

    async def _book_pickup(self) -> None:
        inp = self._inp
        booking = await steps.book(
            inp.return_id,
            f"{inp.return_id}:pickup",
            inp.ship_to,
            {ln.sku: ln.quantity for ln in inp.lines},
            inp.policy,
        )
        self.view_.shipment = ShipmentRecord(
            shipment_id=booking.shipment_id,
            tracking_number=booking.tracking_number,
            warehouse=inp.warehouse,
            status="booked",
        )
        self._note("pickup_booked", "system", f"tracking {booking.tracking_number}")

    async def _on_event(self, ev: c.CarrierEvent) -> None:
        shipment = self.view_.shipment
        if shipment is None or ev.shipment_id != shipment.shipment_id:
            return
        shipment.status = ev.type.lower()
        shipment.events.append(ev.type)
        if ev.type == "DELIVERED":
            await self._set("RECEIVED", "carrier", "the parcel is back in the warehouse")
        elif self.view_.status == "APPROVED" and ev.type == "PICKED_UP":
            await self._set("IN_TRANSIT", "carrier", f"tracking {shipment.tracking_number}")
        else:
            self._note("tracking", "carrier", ev.type)

    async def _start_exchange(self) -> str:
        """The replacement goods, as a new order paid by the return's credit and, for what the
        credit leaves, the way the original order was paid."""
        inp = self._inp
        assert inp.exchange_lines
        if inp.exchange is not None:
            # Priced when the return was asked for: the values staff approved.
            s = self._settlement()
            priced = inp.exchange.model_copy(
                update={
                    "totals": inp.exchange.totals.model_copy(
                        update={"credit": s.credit_used, "total": s.due}
                    )
                }
            )
            payment = self._exchange_payment(s.due)
        else:
            priced = await workflow.execute_local_activity_method(
                InventoryActivities.price,
                PriceInput(lines=inp.exchange_lines, country=inp.ship_to.country),
                start_to_close_timeout=steps.LOCAL,
            )
            payment = PaymentInput(method=PaymentMethod.EXCHANGE_CREDIT)
        order_id = make_order_number(workflow.now(), workflow.uuid4().int)
        order = c.OrderInput(
            order_id=order_id,
            customer=inp.customer,
            channel=inp.channel,
            ship_to=inp.ship_to,
            payment=payment,
            priced=priced,
            notes=f"exchange for {inp.order_id}, return {inp.return_id}",
            created_at=workflow.now(),
            actor="system",
            related=[
                {"type": "exchange-of", "id": inp.order_id},
                {"type": "return", "id": inp.return_id},
            ],
            policy=inp.policy,
        )
        if workflow.patched(c.PATCH_RETURN_WRITES_AFTER_COMMIT):
            # Known to the API from now on, though its workflow has not answered yet.
            await steps.write(
                RecordActivities.claim_system_order,
                SystemOrder(
                    key=f"exchange:{inp.return_id}",
                    order_id=order_id,
                    workflow_input=order.model_dump(mode="json"),
                ),
                after_commit=True,
            )
        await workflow.start_child_workflow(
            c.ORDER_WORKFLOW,
            order,
            id=c.order_workflow_id(order_id),
            # The new order lives its own life once started.
            parent_close_policy=ParentClosePolicy.ABANDON,
            static_summary=f"{order_id} · exchange for {inp.order_id} · {inp.customer.name}",
        )
        return order_id

    @property
    def view_(self) -> ReturnView:
        return self._view

    def _note(self, kind: str, actor: str, detail: str = "") -> None:
        v = self.view_
        v.updated_at = workflow.now()
        v.history.append(
            ReturnEvent(
                seq=len(v.history) + 1,
                at=v.updated_at,
                kind=kind,
                actor=actor[:100],
                status=v.status,
                detail=detail,
            )
        )

    async def _set(self, status: str, actor: str, reason: str) -> None:
        self.view_.status = status
        self.view_.status_reason = reason
        self._note(f"status:{status}", actor, reason)
        await self._save()

    async def _save(self, known_at_once: bool = False) -> None:
        await steps.write(
            RecordActivities.save_return,
            self.view(),
            after_commit=not known_at_once and workflow.patched(c.PATCH_RETURN_WRITES_AFTER_COMMIT),
        )
