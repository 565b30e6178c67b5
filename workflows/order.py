"""OrderWorkflow: one durable workflow per order, from placement to completion (§2, §3)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import (
    RetryPolicy,
    SearchAttributePair,
    TypedSearchAttributes,
)
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError
from temporalio.workflow import ChildWorkflowHandle, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    import workflows.contract as c
    import workflows.steps as steps
    from activities.inventory import (
        DELIVERY_NOT_OFFERED,
        PRICING_ERROR,
        BackorderInput,
        InventoryActivities,
        ParcelHeld,
        ParcelRequest,
        PriceInput,
        ReserveInput,
        ReserveResult,
        ShipInput,
    )
    from activities.logistics import CARRIER_REFUSED
    from activities.payment import DECLINED, AuthorizeInput, PaymentActivities
    from activities.records import MergeQuery, RecordActivities, SaveViewInput
    from activities.risk import RiskActivities, RiskInput
    from models.books import (
        ZERO,
        at_gateway,
        is_credit,
        refund_cap,
        refund_source,
        refund_status,
        refundable,
    )
    from models.edit_log import describe_edit, describe_stock
    from models.money import round_money
    from models.notifications import STAFF, Notification, render, render_alert
    from models.order import (
        AlertRecord,
        HistoryEntry,
        LineInput,
        OrderLine,
        OrderView,
        PaymentInput,
        PaymentMethod,
        PaymentRecord,
        PricedOrder,
        RefundRecord,
        ShipmentRecord,
    )
    from models.order_number import make_order_number
    from models.pricing import merge_lines, parcel_shares
    from models.returns import check_returnable, refund_amount
    from models.shipments import SETTLED, check_split, combined_status, live_parcels
    from models.status import (
        MAIN_PATH,
        EditRefused,
        OrderStatus,
        check_address_editable,
        check_cancellable,
        check_lines_editable,
    )
    from workflows.steps import (
        EXCEPTION_EVENTS,
        LOCAL,
        REMOTE,
        SELF_HEALING,
        SHIPPED_EVENTS,
    )
    from workflows.steps import error_message as _error_message
    from workflows.steps import error_type as _error_type

S = OrderStatus
EditT = TypeVar("EditT", bound=c.EditRequest)
# Statuses in which an order's goods are being or have been picked.
PICKED_OR_LATER = frozenset({S.PICKING, S.PACKED, S.PARTIALLY_SHIPPED, S.SHIPPED, S.DELIVERED})
# The part of a split order that waits for a restock before it becomes parcels.
WAITING_STOCK = "waiting_stock"
# How much of an actor's name the history keeps (the read model's column).
ACTOR_LENGTH = 100
# History entries that change nothing: they leave the order's version where it was.
UNCHANGED = ("_refused", "_ignored")
# How long a parent waits for a parcel to answer a cancel or a new address.
PARCEL_ANSWER = timedelta(minutes=5)


def _pricing_problem(exc: ApplicationError) -> str:
    """The pricing refusal with the lines it names (an unknown SKU, say)."""
    details = exc.details[0] if exc.details else {}
    lines = details.get("lines", []) if isinstance(details, dict) else []
    named = ", ".join(f"{x.get('sku')}: {x.get('problem')}" for x in lines if isinstance(x, dict))
    return f"{exc.message} ({named})" if named else exc.message


@workflow.defn(name=c.ORDER_WORKFLOW)
class OrderWorkflow:
    """Orchestrates stock, payment and carrier for one order; edits arrive as updates or signals."""

    @workflow.init
    def __init__(self, inp: c.OrderInput) -> None:
        # Everything an edit needs is made here, before any handler runs: an update or signal
        # may arrive in the order's very first workflow task, before run() starts.
        self._lock = asyncio.Lock()
        self._events: list[c.CarrierEvent] = []
        self._seen_events: set[str] = set()
        self._history: list[HistoryEntry] = []
        self._alerts: list[AlertRecord] = []
        self._outgoing: list[Notification] = []
        # The history length of the task each email was queued in, by key.
        self._queued_in: dict[str, int] = {}
        self._mail_with_next_task = False
        self._mail_timer: asyncio.Task[None] | None = None
        self._sent_kinds: dict[str, int] = {}
        self._saved_seq = 0
        self._dirty_customer = True
        self._stock_held = False
        self._stock_signal = False
        self._backordered = False
        self._review: c.ReviewDecision | None = None
        self._paid = False
        self._new_method = False
        self._open_returns: set[str] = set()
        self._returned: dict[str, int] = {}
        self._return_asked: dict[str, dict[str, int]] = {}
        # Per open return: the authorization its money goes back to, and the amount it holds.
        self._return_refunds: dict[str, tuple[str | None, Decimal]] = {}
        self._return_tasks: list[asyncio.Task[None]] = []
        self._return_count = 0
        self._window_closed = False
        self._parcels: list[ParcelHeld] = []
        self._children: dict[str, ChildWorkflowHandle[Any, c.ShipmentResult]] = {}
        self._parcel_tasks: list[asyncio.Task[None]] = []
        self._open_parcels: set[str] = set()
        # Parcels asked to cancel or change address that have not answered yet.
        self._awaiting: set[str] = set()
        self._unsaved_reports = False
        self._later: dict[str, int] = {}
        # Parcels of a split order with a carrier exception staff have not acted on, oldest first.
        self._parcel_exceptions: list[str] = []
        self._merged_into: str | None = None
        self._merge_started = False
        # What each parcel answered to the last request sent to it.
        self._answers: dict[str, str] = {}
        self._inp = inp
        self._token = inp.payment.token
        self._view = c.placed_view(inp, workflow.now())
        self._auth_count = 0
        self._booking_count = 0
        self._note("placed", inp.actor or f"customer:{inp.customer.id}", self._summary())

        self._all_changes = workflow.patched(c.PATCH_EVERY_CHANGE_SO_FAR)
        # Orders placed before review, backorders, pay-later and notifications replay the
        # first version of the path; every new order takes the second.
        self._v2 = self._since(c.PATCH_LIFECYCLE_V2)
        # Orders since split shipments may take their units from several warehouses.
        self._v3 = self._v2 and self._since(c.PATCH_SPLIT_SHIPMENTS)
        # Orders since then carry their emails in their next workflow task, not an activity.
        self._mail_with_next_task = self._v3 and self._since(c.PATCH_MAIL_WITH_NEXT_TASK)

    # ---- queries, updates and signals -------------------------------------------------
    # Each edit is one coroutine raising EditRefused; the update returns the refusal to the
    # caller, the signal keeps it in the history only. Both run exactly the same rules.

    @workflow.query(name=c.QUERY_VIEW)
    def view(self) -> OrderView:
        """The order as it stands now, with its full history."""
        return self._current_view(with_history=True)

    async def _as_update(self, edit: Awaitable[None]) -> OrderView:
        try:
            await edit
        except EditRefused as exc:
            raise steps.refusal(exc) from None
        return self._current_view(with_history=True)

    async def _as_signal(
        self,
        name: str,
        args: tuple[Any, ...],
        model: type[EditT],
        edit: Callable[[EditT], Awaitable[None]],
        validate: Callable[[EditT], None] | None = None,
    ) -> None:
        """Run a signal through the same checks and rules as its update. Nobody waits for a
        signal's answer, so a refusal is kept in the history and raised as a staff alert; no
        input, however malformed, may fail the order's workflow.

        Signal handlers take their input untyped (*args): typed, the SDK drops a payload that
        does not decode with a line in the worker's log, and a missing one fails the task."""
        try:
            if len(args) != 1:
                raise ValueError(f"expected one input, got {len(args)}")
            req = model.model_validate(args[0])
            if validate is not None:
                validate(req)
        except (ValueError, TypeError, ApplicationError) as exc:
            # Before this change a payload that did not decode was dropped by the SDK.
            if workflow.patched(c.PATCH_SAFE_SIGNALS):
                await self._refuse_signal(name, "unknown (claimed)", "malformed", str(exc))
            return
        safe = workflow.patched(c.PATCH_SAFE_SIGNALS)
        if safe:
            # A signal carries whatever actor its sender typed: it is a claim, not a login.
            req.actor = f"{req.actor} (claimed)"
        try:
            await edit(req)
        except EditRefused as exc:
            if safe:
                await self._refuse_signal(name, req.actor, exc.rule, exc.message, noted=True)
        except (ActivityError, ApplicationError) as exc:
            if not safe:
                raise
            await self._refuse_signal(name, req.actor, "failed", _error_message(exc))

    async def _refuse_signal(
        self, name: str, actor: str, rule: str, message: str, noted: bool = False
    ) -> None:
        async with self._lock:
            if not noted:
                self._note("signal_refused", actor, f"{name}: {rule}: {message}"[:2000])
            self._alert(
                "signal_refused", "warning", f"{name} from {actor}: {rule}: {message}"[:500]
            )
            await self._flush()

    @workflow.update(name=c.UPDATE_MODIFY)
    async def modify_order(self, req: c.ModifyRequest) -> OrderView:
        """Change address, contact or lines; refused with the rule that forbids it."""
        return await self._as_update(self._modify(req))

    @modify_order.validator
    def _validate_modify(self, req: c.ModifyRequest) -> None:
        self._check_fresh(req)
        if req.ship_to is None and req.contact is None and req.lines is None:
            raise ValueError("nothing to change: give ship_to, contact or lines")
        if req.lines is not None and not req.lines:
            raise ValueError("an order needs at least one line; cancel it instead")

    @workflow.update(name=c.UPDATE_CANCEL)
    async def cancel_order(self, req: c.CancelRequest) -> OrderView:
        """Cancel and compensate; refused once the parcel has shipped."""
        return await self._as_update(self._cancel(req))

    @cancel_order.validator
    def _validate_cancel_order(self, req: c.CancelRequest) -> None:
        self._check_fresh(req)

    @workflow.update(name=c.UPDATE_REVIEW)
    async def review_order(self, req: c.ReviewDecision) -> OrderView:
        """Staff approve or reject an order held for review."""
        return await self._as_update(self._decide_review(req))

    @review_order.validator
    def _validate_review_order(self, req: c.ReviewDecision) -> None:
        self._check_fresh(req)

    @workflow.update(name=c.UPDATE_PAYMENT)
    async def record_payment(self, req: c.PaymentReceived) -> OrderView:
        """Money for a pay-later order arrived."""
        return await self._as_update(self._receive_payment(req))

    @record_payment.validator
    def _validate_record_payment(self, req: c.PaymentReceived) -> None:
        self._check_fresh(req)

    @workflow.update(name=c.UPDATE_PAYMENT_METHOD)
    async def change_payment_method(self, req: c.PaymentMethodChange) -> OrderView:
        """A new card or wallet after a decline."""
        return await self._as_update(self._change_method(req))

    @change_payment_method.validator
    def _validate_change_payment_method(self, req: c.PaymentMethodChange) -> None:
        self._check_fresh(req)

    @workflow.update(name=c.UPDATE_SETTLE_REFUND)
    async def settle_refund(self, req: c.RefundSettled) -> OrderView:
        """Staff sent back by hand money that is due to the customer."""
        return await self._as_update(self._settle_refund(req))

    @settle_refund.validator
    def _validate_settle_refund(self, req: c.RefundSettled) -> None:
        self._check_fresh(req)

    @workflow.signal(name=c.SIGNAL_SETTLE_REFUND)
    async def settle_refund_signal(self, *args: Any) -> None:
        """The same as the update."""
        await self._as_signal(c.SIGNAL_SETTLE_REFUND, args, c.RefundSettled, self._settle_refund)

    @workflow.update(name=c.UPDATE_EXCEPTION_ACTION)
    async def resolve_exception(self, req: c.ExceptionAction) -> OrderView:
        """Staff reship, refund, or contact the customer about a carrier exception."""
        return await self._as_update(self._act_on_exception(req))

    @resolve_exception.validator
    def _validate_resolve_exception(self, req: c.ExceptionAction) -> None:
        self._check_fresh(req)

    @workflow.update(name=c.UPDATE_REQUEST_RETURN)
    async def request_return(self, req: c.ReturnRequest) -> OrderView:
        """Start a return of delivered lines within the after-sales window."""
        return await self._as_update(self._start_return(req))

    @request_return.validator
    def _validate_request_return(self, req: c.ReturnRequest) -> None:
        self._check_fresh(req)

    @workflow.signal(name=c.SIGNAL_REQUEST_RETURN)
    async def return_signal(self, *args: Any) -> None:
        """The same return request as the update."""
        await self._as_signal(c.SIGNAL_REQUEST_RETURN, args, c.ReturnRequest, self._start_return)

    @workflow.signal(name=c.SIGNAL_MODIFY)
    async def modify_signal(self, *args: Any) -> None:
        """The same edit as the update, for the CLI and the UI; a refusal lands in the history."""
        await self._as_signal(
            c.SIGNAL_MODIFY, args, c.ModifyRequest, self._modify, self._validate_modify
        )

    @workflow.signal(name=c.SIGNAL_CANCEL)
    async def cancel_signal(self, *args: Any) -> None:
        """The same cancel as the update, for the CLI and the UI."""
        await self._as_signal(c.SIGNAL_CANCEL, args, c.CancelRequest, self._cancel)

    @workflow.signal(name=c.SIGNAL_REVIEW)
    async def review_signal(self, *args: Any) -> None:
        """The same review decision as the update."""
        await self._as_signal(c.SIGNAL_REVIEW, args, c.ReviewDecision, self._decide_review)

    @workflow.signal(name=c.SIGNAL_PAYMENT)
    async def payment_signal(self, *args: Any) -> None:
        """The same payment notice as the update (e.g. from a bank or gateway webhook)."""
        await self._as_signal(c.SIGNAL_PAYMENT, args, c.PaymentReceived, self._receive_payment)

    @workflow.signal(name=c.SIGNAL_PAYMENT_METHOD)
    async def payment_method_signal(self, *args: Any) -> None:
        """The same payment method change as the update."""
        await self._as_signal(
            c.SIGNAL_PAYMENT_METHOD, args, c.PaymentMethodChange, self._change_method
        )

    @workflow.signal(name=c.SIGNAL_EXCEPTION_ACTION)
    async def exception_signal(self, *args: Any) -> None:
        """The same exception action as the update."""
        await self._as_signal(
            c.SIGNAL_EXCEPTION_ACTION, args, c.ExceptionAction, self._act_on_exception
        )

    @workflow.signal(name=c.SIGNAL_CARRIER_EVENT)
    def carrier_event(self, event: c.CarrierEvent) -> None:
        """A tracking event from the carrier's webhook; duplicates are dropped."""
        if event.event_id not in self._seen_events:
            self._seen_events.add(event.event_id)
            self._events.append(event)

    @workflow.signal(name=c.SIGNAL_SHIPMENT_REPORT)
    def shipment_report(self, r: c.ShipmentReport) -> None:
        """News from one parcel of a split order; the order's status follows its parcels."""
        self._on_parcel_report(r)

    @workflow.update(name=c.UPDATE_SPLIT)
    async def split_order(self, req: c.SplitRequest) -> OrderView:
        """Staff split the lines into parcels by hand, before picking."""
        return await self._as_update(self._split(req))

    @split_order.validator
    def _validate_split_order(self, req: c.SplitRequest) -> None:
        self._check_fresh(req)

    @workflow.signal(name=c.SIGNAL_SPLIT)
    async def split_signal(self, *args: Any) -> None:
        """The same split as the update."""
        await self._as_signal(c.SIGNAL_SPLIT, args, c.SplitRequest, self._split)

    @workflow.signal(name=c.SIGNAL_MERGE_INVITE)
    async def merge_invite(self, inv: c.MergeInvite) -> None:
        """A consolidation asks this order to ship with others; it answers either way."""
        await self._answer_invite(inv)

    @workflow.signal(name=c.SIGNAL_MERGE_RELEASE)
    def merge_release(self, rel: c.MergeRelease) -> None:
        """The merge did not form (or let this order go): it ships on its own after all."""
        if self._merged_into == rel.consolidation_id and not self._merge_started:
            self._merged_into = None
            workflow.upsert_memo({"merged_into": None})
            v = self.view_
            v.related = [
                r for r in v.related if r != {"type": "merged_into", "id": rel.consolidation_id}
            ]
            self._note("merge_released", "system", f"{rel.consolidation_id}: {rel.reason}")
            self._unsaved_reports = True

    @workflow.signal(name=c.SIGNAL_STOCK_ALLOCATED)
    def stock_allocated(self) -> None:
        """A restock reserved this backordered order's units."""
        self._stock_signal = True

    # ---- the main path ----------------------------------------------------------------

    @workflow.run
    async def run(self, inp: c.OrderInput) -> OrderView:
        """Run the order to a terminal status and return its final view."""
        if self._v2:
            if inp.policy.sla_seconds:
                self._sla_watch = asyncio.create_task(self._watch_sla())
            await self._admit()
        else:
            async with self._lock:
                await self._confirm_v1()
        await self._flush()

        if inp.policy.warehouse_release_seconds > 0 and not self._closed:
            if self._v3 and inp.policy.merge_window_seconds > 0 and self._status == S.CONFIRMED:
                await self._merge_by_rule()
            if self._v3:
                await self._wait_release(inp.policy.warehouse_release_seconds)
            else:
                await self._wait(inp.policy.warehouse_release_seconds)
        async with self._lock:
            if not self._closed:
                if self._merged_into is not None:
                    self._ship_merged()
                else:
                    await self._pick_pack_book()
        await self._flush()

        if self._in_parcels:
            await self._follow_parcels()
        while not self._closed and self._status not in (S.DELIVERED,) and not self._in_parcels:
            await workflow.wait_condition(lambda: bool(self._events) or self._closed)
            async with self._lock:
                while self._events and not self._closed:
                    await self._on_carrier_event(self._events.pop(0))
            await self._flush()

        if self._status in (S.DELIVERED,):
            await self._wait(inp.policy.after_sales_window_seconds)
            self._window_closed = True
            # Returns asked for in time are carried to their end before the order closes.
            await workflow.wait_condition(lambda: not self._open_returns)
            async with self._lock:
                if self._status == S.DELIVERED:
                    self._set_status(S.COMPLETED, "system", "after-sales window closed")
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._flush()
        await workflow.wait_condition(lambda: not self._mail_with_next_task or not self._outgoing)
        return self._current_view(with_history=True)

    async def _confirm_v1(self) -> None:
        reserve = await self._reserve(self._wanted(self.view_.lines))
        if not reserve.ok:
            self._set_status(S.FAILED, "system", f"out of stock: {self._shortage_text(reserve)}")
            return
        self.view_.warehouse = reserve.warehouse_id
        self._note("stock_reserved", "system", f"warehouse {reserve.warehouse_id}")
        try:
            await self._authorize(self.view_.totals.total)
        except ActivityError as exc:
            if _error_type(exc) != DECLINED:
                raise
            await self._reserve({})
            self._set_status(S.FAILED, "system", f"payment declined: {_error_message(exc)}")
            return
        self._set_status(S.CONFIRMED, "system", "stock reserved and payment authorized")

    async def _admit(self) -> None:
        """Stock, review, backorder and payment, each waiting as long as its policy allows."""
        v = self.view_
        async with self._lock:
            # Cancelled by an edit that came with the order's start, before this step ran.
            if self._closed:
                return
            reserve = await self._reserve(self._wanted(v.lines))
            self._hold(reserve)
            # An exchange order was made by an approved return: nothing to review.
            reasons: list[str] = (
                []
                if self._exchange
                else await workflow.execute_local_activity_method(
                    RiskActivities.assess,
                    RiskInput(
                        order_id=v.order_id,
                        customer_id=v.customer.id,
                        total=v.totals.total,
                        ship_country=v.ship_to.country,
                        bill_country=v.bill_to.country if v.bill_to else None,
                    ),
                    start_to_close_timeout=LOCAL,
                )
            )
            if reasons:
                v.review_reasons = reasons
                self._set_status(S.PENDING_REVIEW, "risk rules", "; ".join(reasons))
                self._alert("review_needed", "warning", "held for review: " + "; ".join(reasons))
        if reasons and not await self._await_review():
            return
        if not self._stock_held and not self._closed and not await self._await_stock():
            return
        if self._closed or not await self._take_payment():
            return
        async with self._lock:
            if not self._closed:
                self._set_status(S.CONFIRMED, "system", "stock reserved and payment in place")
                self._notify("confirmed")

    def _hold(self, reserve: ReserveResult) -> None:
        # Part now, part after a restock (parcels held but not ok): when the customer allowed it.
        if reserve.ok or reserve.parcels:
            self._stock_held = True
            self._later = self._missing(reserve)
            self._take_allocation(reserve)
            self._note(
                "stock_reserved",
                "system",
                "; ".join([f"warehouse {reserve.warehouse_id}", *reserve.reasons])
                if len(reserve.parcels) <= 1
                else "; ".join(reserve.reasons),
            )
        self._shortfall = reserve

    @staticmethod
    def _missing(reserve: ReserveResult) -> dict[str, int]:
        """Units a partial allocation leaves for later (none if everything is held)."""
        if reserve.ok or not reserve.parcels:
            return {}
        return {
            str(x["sku"]): int(str(x["wanted"])) - int(str(x["available"]))
            for x in reserve.shortages
        }

    def _take_allocation(self, reserve: ReserveResult) -> None:
        self.view_.warehouse = reserve.warehouse_id
        self._parcels = reserve.parcels
        self.view_.allocation = reserve.reasons

    async def _await_review(self) -> bool:
        policy = self._inp.policy
        await self._flush()
        decided = await self._wait_for(
            lambda: self._review is not None, policy.review_escalate_seconds
        )
        if not decided and not self._closed:
            async with self._lock:
                self._alert(
                    "review_overdue",
                    "critical",
                    f"not reviewed within {policy.review_escalate_seconds:.0f} s",
                )
            await self._flush()
            await self._wait_for(
                lambda: self._review is not None,
                max(0.0, policy.review_timeout_seconds - policy.review_escalate_seconds),
            )
        async with self._lock:
            if self._closed:
                return False
            review = self._review or c.ReviewDecision(
                decision="reject", note="not reviewed in time", actor="system"
            )
            self._resolve_alerts({"review_needed", "review_overdue"})
            if review.decision == "reject":
                await self._close(S.CANCELLED, review.actor, f"rejected in review: {review.note}")
                return False
            self._note("review_approved", review.actor, review.note)
        return True

    async def _await_stock(self) -> bool:
        policy = self._inp.policy
        v = self.view_
        async with self._lock:
            if self._closed:
                return False
            self._backordered = True
            await workflow.execute_local_activity_method(
                InventoryActivities.backorder,
                BackorderInput(
                    order_id=v.order_id,
                    lines=self._wanted(v.lines),
                    ship_country=v.ship_to.country,
                    split=self._v3,
                ),
                start_to_close_timeout=LOCAL,
            )
            detail = self._shortage_text(self._shortfall)
            self._set_status(S.BACKORDERED, "system", f"waiting for stock: {detail}")
            self._notify("backorder_delay", detail)
        await self._flush()
        deadline = workflow.now() + timedelta(seconds=policy.backorder_timeout_seconds)
        while not self._closed and not self._stock_held:
            left = (deadline - workflow.now()).total_seconds()
            if left <= 0:
                break
            await self._wait_for(
                lambda: self._stock_signal or self._stock_held,
                min(policy.backorder_recheck_seconds, left),
            )
            async with self._lock:
                self._stock_signal = False
                if self._closed or self._stock_held:
                    break
                # Declarative: a restock that already reserved for us makes this a no-op.
                reserve = await self._reserve(self._wanted(v.lines))
                self._hold(reserve)
        async with self._lock:
            if self._closed:
                return False
            await self._close_backorder()
            if not self._stock_held:
                await self._close(S.CANCELLED, "system", "backorder not filled in time")
                return False
        return True

    @property
    def _exchange(self) -> bool:
        """Made by a return's exchange: paid by its credit, and what that leaves (the total of
        an exchange valued against its credit) paid the way the original order was."""
        v = self.view_
        return v.payment_method == PaymentMethod.EXCHANGE_CREDIT or v.totals.credit > 0

    async def _take_payment(self) -> bool:
        v = self.view_
        policy = self._inp.policy
        if self._exchange:
            # Exchanges from before they were valued were paid by credit whatever they cost.
            credit = v.totals.credit or v.totals.total
            v.payments.append(
                PaymentRecord(
                    authorization_id=f"exchange:{v.order_id}",
                    amount=credit,
                    currency=v.totals.currency,
                    status="paid",
                    captured=credit,
                )
            )
            self._note(
                "paid_by_exchange_credit",
                "system",
                next((r["id"] for r in v.related if r["type"] == "return"), ""),
            )
            if v.payment_method == PaymentMethod.EXCHANGE_CREDIT:
                return True
        if v.payment_method.pays_later:
            if self._paid:
                # Paid before the order came to ask (only orders since PATCH_PAYMENT_ONCE).
                return True
            async with self._lock:
                self._set_status(
                    S.AWAITING_PAYMENT, "system", f"waiting for {v.payment_method.value} payment"
                )
                self._notify("awaiting_payment")
            await self._flush()
            await self._wait_for(lambda: self._paid, policy.payment_timeout_seconds)
            async with self._lock:
                if self._closed:
                    return False
                if not self._paid:
                    await self._close(S.CANCELLED, "system", "not paid in time")
                    return False
            return True

        deadline = None
        while True:
            async with self._lock:
                if self._closed:
                    return False
                try:
                    await self._authorize(v.totals.total)
                    return True
                except ActivityError as exc:
                    if _error_type(exc) != DECLINED:
                        raise
                    reason = _error_message(exc)
                if deadline is None:
                    deadline = workflow.now() + timedelta(seconds=policy.new_payment_method_seconds)
                self._new_method = False
                self._set_status(
                    S.AWAITING_PAYMENT,
                    "gateway",
                    f"payment declined: {reason}; waiting for a new payment method",
                )
                self._notify("payment_problem", reason)
            await self._flush()
            left = (deadline - workflow.now()).total_seconds()
            await self._wait_for(lambda: self._new_method, left)
            async with self._lock:
                if self._closed:
                    return False
                if not self._new_method:
                    await self._close(
                        S.FAILED, "system", f"payment declined: {reason}; no new payment method"
                    )
                    return False

    async def _pick_pack_book(self) -> None:
        v = self.view_
        if self._v3 and self._parcels and self._since(c.PATCH_HOLD_BEFORE_PICKING):
            if not await self._hold_parcels():
                return
        if len(self._parcels) > 1 or self._later:
            await self._ship_in_parcels()
            return
        self._set_status(S.PICKING, "system", f"pick ticket sent to warehouse {v.warehouse}")
        self._set_status(
            S.PACKED, "warehouse", f"{sum(ln.quantity for ln in v.lines)} units packed"
        )
        try:
            await self._book()
        except ActivityError as exc:
            if _error_type(exc) != CARRIER_REFUSED:
                raise
            # Nothing will ship: undo what confirmation did, so no stock or money stays held.
            await self._close(S.FAILED, "carrier", f"shipment refused: {_error_message(exc)}")

    async def _hold_parcels(self) -> bool:
        """Make the stock held match the parcels about to be picked, or fail the order.

        A local activity's effect outlives a workflow task that never completed (the worker or
        the server died first): an edit's new reservation can stay behind while the order never
        learns of it, and a retried edit may then be refused. Reservations are declarative, so
        stating them once more here undoes that, and changes nothing otherwise.
        """
        wanted: dict[str, int] = {}
        for p in self._parcels:
            for sku, q in p.lines.items():
                wanted[sku] = wanted.get(sku, 0) + q
        fixed = [ParcelRequest(warehouse_id=p.warehouse_id, lines=p.lines) for p in self._parcels]
        reserve = await self._reserve(wanted, parcels=fixed)
        if reserve.ok:
            return True
        short = self._shortage_text(reserve)
        await self._close(S.FAILED, "system", f"stock no longer held: {short}")
        # After the close, which resolves the order's open alerts: staff must look at this one.
        self._alert("stock_lost", "critical", short)
        return False

    async def _book(self, batch: int = 1) -> None:
        v = self.view_
        self._booking_count += 1
        booking = await steps.book(
            v.order_id,
            f"{v.order_id}:ship:{self._booking_count}",
            v.ship_to,
            self._wanted(v.lines),
            self._inp.policy,
            v.delivery,
        )
        v.shipments.append(
            ShipmentRecord(
                shipment_id=booking.shipment_id,
                tracking_number=booking.tracking_number,
                warehouse=v.warehouse,
                status="booked",
                batch=batch,
            )
        )
        self._note("shipment_booked", "system", f"tracking {booking.tracking_number}")

    async def _on_carrier_event(self, ev: c.CarrierEvent) -> None:
        v = self.view_
        shipment = next((s for s in v.shipments if s.shipment_id == ev.shipment_id), None)
        if shipment is None or shipment.status == "cancelled":
            self._note("carrier_event_ignored", "carrier", f"{ev.type} for {ev.shipment_id}")
            return
        shipment.status = ev.type.lower()
        shipment.events.append(ev.type)
        detail = f"{ev.type} {shipment.tracking_number} {ev.detail}".strip()
        left = ev.type in SHIPPED_EVENTS | {"DELIVERED"}
        if left and shipment.batch > 1 and not shipment.left_warehouse:
            # A reshipment: its own units leave stock; the payment was captured already.
            await workflow.execute_local_activity_method(
                InventoryActivities.ship_batch,
                ShipInput(order_id=v.order_id, batch=shipment.batch),
                start_to_close_timeout=LOCAL,
            )
            shipment.left_warehouse = True
            self._note("reshipment_left", "carrier", detail)
        elif self._status == S.PACKED and left:
            # The parcel left: stock leaves the books and the payment is captured, once.
            await workflow.execute_local_activity_method(
                InventoryActivities.ship, v.order_id, start_to_close_timeout=LOCAL
            )
            await self._capture()
            shipment.left_warehouse = True
            self._set_status(S.SHIPPED, "carrier", detail)
            self._notify("shipped")
        if ev.type == "DELIVERED":
            v.open_exception = ""
            self._resolve_alerts({"carrier_exception"})
            self._set_status(S.DELIVERED, "carrier", detail)
            self._notify("delivered")
        elif ev.type in EXCEPTION_EVENTS:
            self._note("carrier_exception", "carrier", detail)
            if self._v2:
                self._on_exception(ev.type, detail)
        elif self._status != S.SHIPPED or ev.type != "PICKED_UP":
            self._note("tracking", "carrier", detail)

    def _on_exception(self, kind: str, detail: str) -> None:
        if kind in SELF_HEALING:
            self._alert("delivery_attempt_failed", "info", detail)
            return
        self.view_.open_exception = detail
        self._alert("carrier_exception", "critical", f"{detail}: reship, refund or contact")
        self._notify("delivery_issue", kind.lower().replace("_", " "))

    # ---- split orders: one child workflow per parcel ----------------------------------

    async def _ship_in_parcels(self) -> None:
        v = self.view_
        later = [self._later] if self._later else []
        shares = parcel_shares(v.lines, v.totals.total, [p.lines for p in self._parcels] + later)
        self._set_status(
            S.PICKING,
            "system",
            f"{len(self._parcels)} parcel(s): pick tickets sent to "
            + ", ".join(p.warehouse_id for p in self._parcels)
            + (" (the rest ships after a restock)" if later else ""),
        )
        for parcel, share in zip(self._parcels, shares, strict=False):
            await self._start_parcel(parcel, share)
        if self._later:
            await self._wait_for_rest(shares[-1])

    async def _start_parcel(self, parcel: ParcelHeld, share: Decimal) -> None:
        v = self.view_
        payment = self._open_authorization()
        no = c.shipment_number(v.order_id, parcel.batch)
        lines = [
            ln.model_copy(
                update={
                    "quantity": parcel.lines[ln.sku],
                    "line_total": round_money(ln.unit_price * parcel.lines[ln.sku]),
                }
            )
            for ln in v.lines
            if ln.sku in parcel.lines
        ]
        record = ShipmentRecord(
            shipment_id="",
            tracking_number="",
            warehouse=parcel.warehouse_id,
            status="picking",
            batch=parcel.batch,
            shipment_no=no,
            lines=parcel.lines,
            amount=share,
        )
        # Known before the start is confirmed: when this workflow is behind (a crash, a slow
        # task), the parcel's first reports arrive in the same task as the news of its start,
        # and signals are handled first; a parcel not known yet would lose them.
        known_first = self._since(c.PATCH_PARCEL_KNOWN_BEFORE_START)
        if known_first:
            v.shipments.append(record)
        handle = await workflow.start_child_workflow(
            c.SHIPMENT_WORKFLOW,
            c.ShipmentInput(
                shipment_no=no,
                order_id=v.order_id,
                batch=parcel.batch,
                warehouse=parcel.warehouse_id,
                lines=lines,
                ship_to=v.ship_to,
                amount=share if payment else Decimal("0.00"),
                currency=v.totals.currency,
                authorization_id=payment.authorization_id if payment else None,
                policy=self._inp.policy,
                delivery=v.delivery,
            ),
            id=c.shipment_workflow_id(no),
            result_type=c.ShipmentResult,
            static_summary=f"{no} · parcel {parcel.batch} of {v.order_id} from "
            f"{parcel.warehouse_id}",
            memo={"order_id": v.order_id},
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(c.SA_CUSTOMER, v.customer.id),
                    SearchAttributePair(c.SA_CHANNEL, v.channel.value),
                    SearchAttributePair(c.SA_SKUS, sorted(parcel.lines)),
                    SearchAttributePair(c.SA_PARENT, v.order_id),
                ]
            ),
        )
        if not known_first:
            v.shipments.append(record)
        v.related.append({"type": "shipment", "id": no})
        self._children[no] = handle
        self._open_parcels.add(no)
        self._parcel_tasks.append(asyncio.create_task(self._follow_parcel(no, handle)))
        self._note("parcel_started", "system", f"{no} from {parcel.warehouse_id}: {share}")

    async def _wait_for_rest(self, share: Decimal) -> None:
        """Queue what could not ship now for the next restock, as a parcel still to come."""
        v = self.view_
        batch = max(p.batch for p in self._parcels) + 1
        no = c.shipment_number(v.order_id, batch)
        rest = ShipmentRecord(
            shipment_id="",
            tracking_number="",
            status=WAITING_STOCK,
            batch=batch,
            shipment_no=no,
            lines=self._later,
            amount=share,
        )
        v.shipments.append(rest)
        self._backordered = True
        await workflow.execute_local_activity_method(
            InventoryActivities.backorder,
            BackorderInput(
                order_id=v.order_id,
                lines=self._later,
                ship_country=v.ship_to.country,
                batch=batch,
                split=True,
            ),
            start_to_close_timeout=LOCAL,
        )
        detail = ", ".join(f"{q} x {sku}" for sku, q in sorted(self._later.items()))
        self._note("parcel_backordered", "system", f"{no} waits for {detail}")
        self._notify("backorder_delay", f"{detail} will follow in a second parcel")
        self._parcel_tasks.append(asyncio.create_task(self._fill_rest(rest)))

    async def _fill_rest(self, rest: ShipmentRecord) -> None:
        """Start the rest's parcels once a restock holds its units; cancel it past the limit."""
        policy = self._inp.policy
        deadline = workflow.now() + timedelta(seconds=policy.backorder_timeout_seconds)
        while not self._closed and rest.status == WAITING_STOCK:
            left = (deadline - workflow.now()).total_seconds()
            if left <= 0:
                break
            await self._wait_for(
                lambda: self._stock_signal or rest.status != WAITING_STOCK,
                min(policy.backorder_recheck_seconds, left),
            )
            async with self._lock:
                self._stock_signal = False
                if self._closed or rest.status != WAITING_STOCK:
                    return
                # Declarative: a restock that already reserved for us makes this a no-op.
                reserve = await self._reserve(rest.lines, batch=rest.batch, split=True)
                if not reserve.ok:
                    continue
                await self._close_backorder()
                amount = rest.amount or Decimal("0.00")
                lines = [ln for ln in self.view_.lines if ln.sku in rest.lines]
                shares = parcel_shares(
                    [
                        ln.model_copy(
                            update={
                                "quantity": rest.lines[ln.sku],
                                "line_total": ln.unit_price * rest.lines[ln.sku],
                            }
                        )
                        for ln in lines
                    ],
                    amount,
                    [p.lines for p in reserve.parcels],
                )
                for parcel, share in zip(reserve.parcels, shares, strict=True):
                    await self._start_parcel(parcel, share)
                # Only now: until the parcels run, the order must not think it has none left.
                self.view_.shipments.remove(rest)
                self._unsaved_reports = True
                return
        async with self._lock:
            if self._closed or rest.status != WAITING_STOCK:
                return
            await self._close_backorder()
            rest.status = "cancelled"
            self._note("parcel_cancelled", "system", f"{rest.shipment_no}: not restocked in time")
            self._notify("parcels_cancelled", "the items still out of stock will not be sent")
            self._follow_combined_status()
            self._unsaved_reports = True

    async def _follow_parcel(
        self, no: str, handle: ChildWorkflowHandle[Any, c.ShipmentResult]
    ) -> None:
        try:
            result = await handle
        except ChildWorkflowError as exc:
            # A parcel whose workflow failed (e.g. the gateway refused its capture) needs staff.
            result = c.ShipmentResult(shipment_no=no, status="failed", detail=str(exc.cause))
            self._alert("shipment_failed", "critical", f"{no}: {result.detail}")
            self._unsaved_reports = True
        self._open_parcels.discard(no)
        rec = self._parcel(no)
        # A parcel staff reshipped or refunded keeps that as its end.
        if rec is not None and result.status != "delivered" and rec.status not in SETTLED:
            rec.status = result.status

    def _parcels_pending(self) -> bool:
        return bool(self._open_parcels) or any(
            s.status == WAITING_STOCK for s in self.view_.shipments
        )

    async def _follow_parcels(self) -> None:
        """Save what the parcels report until every one has ended, then settle the payment."""
        while True:
            while self._parcels_pending():
                await workflow.wait_condition(
                    lambda: self._unsaved_reports or not self._parcels_pending()
                )
                self._unsaved_reports = False
                await self._flush()
            async with self._lock:
                # A handler holding the lock (a reshipment) may have started a parcel meanwhile.
                if not self._parcels_pending():
                    await self._settle_payment()
                    break
        await self._flush()

    async def _settle_payment(self) -> None:
        """Give back what the authorization still holds; fail an order with no parcel left."""
        v = self.view_
        payment = self._open_authorization()
        if payment is not None:
            # Parcels that never shipped leave part of the hold: give it back to the card.
            await steps.void(v.order_id, payment.authorization_id, self._inp.policy)
            payment.status = "captured" if payment.captured > 0 else "voided"
            self._note(
                "payment_released",
                "gateway",
                f"{payment.amount - payment.captured} {payment.currency} not captured",
            )
        if not self._closed and not live_parcels(v.shipments):
            await self._close(S.FAILED, "carrier", "no parcel could be shipped")

    def _parcel(self, no: str) -> ShipmentRecord | None:
        return next((s for s in self.view_.shipments if s.shipment_no == no), None)

    def _on_parcel_report(self, r: c.ShipmentReport) -> None:
        if r.event in ("cancelled", "cancel_refused", "address_changed", "address_refused"):
            self._awaiting.discard(r.shipment_no)
            self._answers[r.shipment_no] = r.event
        if r.event == "picking":
            self._merge_started = True
        if r.event in ("delivered", "cancelled", "failed") and r.shipment_no == self._merged_into:
            # A merged parcel is no child of ours: its reports tell us when it ends.
            self._open_parcels.discard(r.shipment_no)
        rec = self._parcel(r.shipment_no)
        if rec is None:
            return
        if r.tracking_number:
            rec.tracking_number = r.tracking_number
            rec.shipment_id = r.carrier_shipment_id
        if r.carrier_event:
            rec.status = r.carrier_event.lower()
            rec.events.append(r.carrier_event)
        detail = f"{r.shipment_no}: {r.detail}"
        if r.event == "booked":
            rec.status = "booked" if not rec.left_warehouse else rec.status
            self._note("shipment_booked", "carrier", detail)
        elif r.event == "left":
            if rec.left_warehouse:
                return
            rec.left_warehouse = True
            rec.captured += r.captured
            payment = self._open_authorization()
            if payment is not None and r.captured > 0:
                payment.captured += r.captured
                payment.status = (
                    "captured" if payment.captured >= payment.amount else "partially_captured"
                )
                self._note("payment_captured", "gateway", f"{r.captured} {payment.currency}")
            self._note("parcel_left", "carrier", detail)
            self._notify("parcel_shipped", f"{r.shipment_no}, tracking {rec.tracking_number}")
        elif r.event == "delivered":
            rec.status = "delivered"
            self._note("parcel_delivered", "carrier", detail)
        elif r.event == "exception":
            self._note("carrier_exception", "carrier", detail)
            if r.carrier_event not in SELF_HEALING and r.shipment_no not in self._parcel_exceptions:
                self._parcel_exceptions.append(r.shipment_no)
            self._on_exception(r.carrier_event, detail)
        elif r.event in ("cancelled", "failed"):
            rec.status = r.event
            self._note(f"parcel_{r.event}", "system", detail)
            if r.event == "failed":
                self._alert("shipment_failed", "critical", detail)
        else:
            self._note(f"parcel_{r.event}", "system", detail)
        self._follow_combined_status()
        self._unsaved_reports = True

    def _follow_combined_status(self) -> None:
        v = self.view_
        status = combined_status(v.shipments)
        if status is None and any(s.status == "refunded" for s in v.shipments):
            if not self._closed:
                self._set_status(S.REFUNDED, "staff", "every parcel refunded")
                self._notify("refunded", "for every parcel of the order")
            return
        # Once delivered the order's own after-sales statuses (returns) take over.
        if status is None or status == self._status or self._closed:
            return
        if self._status not in (S.PICKING, S.PACKED, S.PARTIALLY_SHIPPED, S.SHIPPED):
            return
        # A reshipped parcel starts over, but the order does not go back to PICKING.
        if MAIN_PATH.index(status) < MAIN_PATH.index(self._status):
            return
        live = live_parcels(v.shipments)
        left = sum(1 for p in live if p.left_warehouse)
        reason = {
            S.PACKED: f"{len(live)} parcels packed and booked",
            S.PARTIALLY_SHIPPED: f"{left} of {len(live)} parcels shipped",
            S.SHIPPED: f"all {len(live)} parcels shipped",
            S.DELIVERED: f"all {len(live)} parcels delivered",
        }.get(status, str(status))
        self._set_status(status, "carrier", reason)
        if status == S.DELIVERED:
            v.open_exception = ""
            self._resolve_alerts({"carrier_exception"})
            self._notify("delivered")

    async def _ask_parcels(self, signal: str, arg: object) -> list[ShipmentRecord]:
        """Send a request to every parcel that has not left and wait for their answers."""
        targets = [
            s
            for s in self.view_.shipments
            if s.shipment_no
            and not s.left_warehouse
            and s.status not in ("cancelled", "failed", "delivered")
            and s.shipment_no in self._open_parcels
        ]
        for s in targets:
            self._awaiting.add(s.shipment_no)
            try:
                await self._children[s.shipment_no].signal(signal, arg)
            except Exception:
                # The parcel's workflow ended in the meantime: there is nobody left to ask.
                self._awaiting.discard(s.shipment_no)
        nos = {s.shipment_no for s in targets}
        try:
            await workflow.wait_condition(lambda: not (nos & self._awaiting), timeout=PARCEL_ANSWER)
        except TimeoutError:
            self._awaiting -= nos
        return targets

    async def _cancel_parcels(self, req: c.CancelRequest) -> None:
        """Cancel what has not shipped; the whole order if nothing has."""
        reason = req.reason or "cancelled"
        asked = await self._ask_parcels(
            c.SIGNAL_SHIPMENT_CANCEL, c.ShipmentCancel(actor=req.actor, reason=reason)
        )
        for rest in self.view_.shipments:
            if rest.status == WAITING_STOCK:
                await self._close_backorder()
                rest.status = "cancelled"
                asked.append(rest)
        stopped = [s.shipment_no for s in asked if s.status == "cancelled"]
        if not stopped:
            raise EditRefused(
                "parcels_already_left",
                "every parcel has left the warehouse; request a return instead",
            )
        if not live_parcels(self.view_.shipments):
            await self._close(S.CANCELLED, req.actor, reason)
            return
        self._note("parcels_cancelled", req.actor, f"{', '.join(stopped)}: {reason}")
        self._notify("parcels_cancelled", f"parcel(s) {', '.join(stopped)} cancelled: {reason}")
        if all(p.left_warehouse for p in live_parcels(self.view_.shipments)):
            # Every parcel still going has captured its share: the rest of the hold goes back now.
            await self._settle_payment()
        self._follow_combined_status()

    # ---- merged orders: one parcel with other orders of the same customer ------------

    @property
    def _in_parcels(self) -> bool:
        return bool(self._children) or self._merged_into is not None

    def _merge_refusal(self) -> str:
        v = self.view_
        if not self._v3:
            return "merge_not_supported: the order was placed before merging"
        if self._closed:
            return f"merge_order_closed: the order is {v.status}"
        if self._merged_into is not None:
            return f"merge_already_merged: the order ships with {self._merged_into}"
        if self._children or self._later or len(self._parcels) > 1:
            return "merge_split_order: the order ships in several parcels"
        if v.status != S.CONFIRMED:
            rule = "merge_already_picked" if v.status in PICKED_OR_LATER else "merge_not_confirmed"
            return f"{rule}: the order is {v.status}"
        return ""

    async def _answer_invite(self, inv: c.MergeInvite) -> None:
        async with self._lock:
            v = self.view_
            cid = inv.consolidation_id
            reason = self._merge_refusal()
            if reason:
                self._note("merge_refused", "system", f"{cid}: {reason}")
                answer = c.MergeAnswer(order_id=v.order_id, joined=False, reason=reason)
            else:
                self._merged_into = cid
                v.related.append({"type": "merged_into", "id": cid})
                # Shown in the Temporal UI beside the order: the merged shipment it rides in.
                workflow.upsert_memo({"merged_into": cid})
                self._note("merged", "system", f"ships with {cid}")
                payment = self._active_payment()
                answer = c.MergeAnswer(
                    order_id=v.order_id,
                    joined=True,
                    lines=self._wanted(v.lines),
                    warehouse=v.warehouse,
                    amount=v.totals.total if payment else Decimal("0.00"),
                    authorization_id=payment.authorization_id if payment else None,
                    customer_id=v.customer.id,
                    ship_to=v.ship_to,
                    delivery=v.delivery,
                )
            try:
                await workflow.get_external_workflow_handle(
                    c.consolidation_workflow_id(cid)
                ).signal(c.SIGNAL_MERGE_ANSWER, answer)
            except Exception:
                # The consolidation is gone: this order ships on its own.
                self._merged_into = None
            await self._flush()

    async def _merge_by_rule(self) -> None:
        """Ship with the customer's other open orders to this address placed just before."""
        v = self.view_
        window = self._inp.policy.merge_window_seconds
        partners: list[str] = await workflow.execute_local_activity_method(
            RecordActivities.merge_partners,
            MergeQuery(
                order_id=v.order_id,
                customer_id=v.customer.id,
                ship_to=v.ship_to,
                placed_at=v.created_at,
                window_seconds=window,
            ),
            start_to_close_timeout=LOCAL,
        )
        if not partners:
            return
        order_ids = [*partners, v.order_id]
        cid = make_order_number(workflow.now(), workflow.uuid4().int, prefix="CN")
        # Abandoned, not terminated, with this order: the merge serves its other orders too.
        await workflow.start_child_workflow(
            c.CONSOLIDATION_WORKFLOW,
            c.ConsolidationInput(
                consolidation_id=cid,
                customer_id=v.customer.id,
                ship_to=v.ship_to,
                order_ids=order_ids,
                actor="merge rule",
                reason=f"same customer and address within {window:.0f} s",
                policy=self._inp.policy,
            ),
            id=c.consolidation_workflow_id(cid),
            parent_close_policy=ParentClosePolicy.ABANDON,
            static_summary=f"{cid} · merged shipment of " + ", ".join(order_ids),
            memo={"orders": order_ids},
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(c.SA_CUSTOMER, v.customer.id)]
            ),
        )
        self._note("merge_proposed", "merge rule", f"{cid} with {', '.join(partners)}")

    async def _wait_release(self, seconds: float) -> None:
        """The warehouse release delay; a merge that takes the order over ends it early."""
        deadline = workflow.now() + timedelta(seconds=seconds)
        while not self._closed:
            left = (deadline - workflow.now()).total_seconds()
            if not await self._wait_for(lambda: self._merged_into is not None, left):
                return
            await workflow.wait_condition(
                lambda: self._merge_started or self._merged_into is None or self._closed
            )
            if self._merged_into is not None:
                return
            await self._flush()  # released from a merge that did not form

    def _ship_merged(self) -> None:
        v = self.view_
        assert self._merged_into is not None
        v.shipments.append(
            ShipmentRecord(
                shipment_id="",
                tracking_number="",
                warehouse=v.warehouse,
                status="picking",
                shipment_no=self._merged_into,
                lines=self._wanted(v.lines),
                amount=v.totals.total,
            )
        )
        self._open_parcels.add(self._merged_into)
        self._set_status(S.PICKING, "system", f"picked with merged parcel {self._merged_into}")

    async def _withdraw_from_merge(self, req: c.CancelRequest) -> None:
        """Take the order out of its merge before picking, then cancel it as usual."""
        cid = self._merged_into
        assert cid is not None
        self._awaiting.add(cid)
        self._answers.pop(cid, None)
        await workflow.get_external_workflow_handle(c.consolidation_workflow_id(cid)).signal(
            c.SIGNAL_MERGE_WITHDRAW,
            c.MergeWithdraw(order_id=self.view_.order_id, actor=req.actor, reason=req.reason),
        )
        try:
            await workflow.wait_condition(lambda: cid not in self._awaiting, timeout=PARCEL_ANSWER)
        except TimeoutError:
            self._awaiting.discard(cid)
        if self._answers.get(cid) != "cancelled":
            raise EditRefused(
                "merged_parcel_picking",
                f"the merged parcel {cid} is being picked; its goods can no longer be taken out",
            )
        self._merged_into = None
        self._open_parcels.discard(cid)
        self._note("merge_left", req.actor, f"taken out of {cid}")
        await self._close(S.CANCELLED, req.actor, req.reason or "cancelled")

    # ---- edits ------------------------------------------------------------------------

    async def _split(self, req: c.SplitRequest) -> None:
        async with self._lock:
            v = self.view_
            try:
                self._check_version(req)
                if not self._v3:
                    raise EditRefused(
                        "split_not_supported", "this order was placed before split shipments"
                    )
                try:
                    check_lines_editable(v.status)
                except EditRefused as exc:
                    raise EditRefused("split_locked_after_picking", exc.message) from None
                if not self._stock_held:
                    raise EditRefused(
                        "split_needs_stock", f"the order is {v.status}: its stock is not held yet"
                    )
                parcels = [
                    {ln.sku: ln.quantity for ln in merge_lines(p.lines)} for p in req.parcels
                ]
                check_split(self._wanted(v.lines), parcels)
                reserve = await self._reserve(
                    self._wanted(v.lines),
                    parcels=[
                        ParcelRequest(warehouse_id=p.warehouse_id, lines=lines)
                        for p, lines in zip(req.parcels, parcels, strict=True)
                    ],
                )
                if not reserve.ok:
                    raise EditRefused(
                        "insufficient_stock",
                        "the parcels cannot be filled as asked: " + self._shortage_text(reserve),
                    )
            except EditRefused as exc:
                self._note("split_refused", req.actor, f"{exc.rule}: {exc.message}")
                await self._flush()
                raise
            self._take_allocation(reserve)
            self._later = {}
            self._note("split_by_hand", req.actor, "; ".join([*reserve.reasons, req.note]))
            await self._flush()

    async def _modify(self, req: c.ModifyRequest) -> None:
        async with self._lock:
            try:
                await self._apply_modify(req)
            except EditRefused as exc:
                self._note("edit_refused", req.actor, f"{exc.rule}: {exc.message}")
                raise
            finally:
                await self._flush()

    async def _apply_modify(self, req: c.ModifyRequest) -> None:
        v = self.view_
        self._check_version(req)
        before = v.model_copy(deep=True)
        if self._merged_into is not None and (req.lines is not None or req.ship_to is not None):
            raise EditRefused(
                "merged_order_locked",
                f"the order ships with {self._merged_into}: its lines and address are fixed; "
                "cancel it out of the merge first",
            )
        if req.lines is not None:
            check_lines_editable(v.status)
        if req.ship_to is not None or req.contact is not None:
            check_address_editable(v.status)
        country_changes = req.ship_to is not None and req.ship_to.country != v.ship_to.country
        if country_changes and req.lines is None:
            # Tax and shipping depend on the country: that is a repricing, allowed as lines are.
            try:
                check_lines_editable(v.status)
            except EditRefused as exc:
                raise EditRefused("country_locked_after_picking", exc.message) from None

        if req.lines is not None or country_changes:
            lines = req.lines if req.lines is not None else self._line_inputs()
            country = req.ship_to.country if req.ship_to is not None else v.ship_to.country
            await self._reprice(lines, country)

        changes = []
        if req.ship_to is not None and req.ship_to != v.ship_to:
            v.ship_to = req.ship_to
            changes.append("address")
            if self._children:
                await self._ask_parcels(
                    c.SIGNAL_SHIPMENT_ADDRESS, c.ShipmentAddress(ship_to=v.ship_to, actor=req.actor)
                )
            elif any(s.status == "booked" for s in v.shipments):
                await self._rebook()
        if req.contact is not None:
            if req.contact.email is not None:
                v.customer.email = req.contact.email
            if req.contact.phone is not None:
                v.customer.phone = req.contact.phone
            self._dirty_customer = True
            changes.append("contact")
            if self._since(c.PATCH_CONTACT_SEARCH):
                phone = v.customer.phone
                workflow.upsert_search_attributes(
                    [
                        c.SA_CUSTOMER_EMAIL.value_set(v.customer.email),
                        c.SA_CUSTOMER_PHONE.value_set(phone)
                        if phone
                        else c.SA_CUSTOMER_PHONE.value_unset(),
                    ]
                )
        if req.lines is not None:
            changes.append("lines")
        # Before and after, for staff auditing the order; the same edit twice changes nothing.
        self._note(
            "modified", req.actor, describe_edit(before, v) or ", ".join(changes) + " unchanged"
        )

    async def _reprice(self, lines: list[LineInput], country: str) -> None:
        v = self.view_
        if v.totals.credit:
            # Priced against the return's credit when staff approved it; a new price would
            # charge the credit again.
            raise EditRefused(
                "exchange_lines_fixed",
                "an exchange order's goods and country are fixed: return them instead",
            )
        try:
            priced: PricedOrder = await workflow.execute_local_activity_method(
                InventoryActivities.price,
                PriceInput(
                    lines=lines,
                    country=country,
                    promotion_code=self._inp.promotion_code,
                    delivery=v.delivery,
                ),
                start_to_close_timeout=LOCAL,
            )
        except ActivityError as exc:
            raise EditRefused("lines_invalid", _error_message(exc)) from None
        except ApplicationError as exc:
            # A local activity's business error arrives unwrapped. Refused before stock or
            # payment is touched; other errors fail the update as they always have.
            if exc.type == DELIVERY_NOT_OFFERED:
                raise EditRefused("delivery_not_offered", exc.message) from None
            # An unknown SKU failed a signal's whole workflow once; now it is a refusal.
            if exc.type == PRICING_ERROR and workflow.patched(c.PATCH_SAFE_SIGNALS):
                raise EditRefused("lines_invalid", _pricing_problem(exc)) from None
            raise
        old_wanted = self._wanted(v.lines)
        reserve = await self._reserve(self._wanted(priced.lines), country)
        # A partial allocation holds what there is when the customer allowed that.
        if (
            not reserve.ok
            and not reserve.parcels
            and not (self._v2 and self._status == S.BACKORDERED)
        ):
            raise EditRefused(
                "insufficient_stock",
                "not enough stock for the new lines: "
                + ", ".join(f"{s['sku']} available {s['available']}" for s in reserve.shortages),
            )
        authorized = self._active_payment()
        # Before payment was taken there is nothing to adjust; v1 orders always had one.
        needs_auth = not self._v2 or self._status not in (
            S.PLACED,
            S.PENDING_REVIEW,
            S.BACKORDERED,
            S.AWAITING_PAYMENT,
        )
        # The card may be authorized a moment before the order shows CONFIRMED (an edit waiting
        # for the lock gets it first): a bigger total then needs a bigger authorization too,
        # or the capture would be refused when the parcel leaves.
        grown = authorized is not None and priced.totals.total > authorized.amount
        if not needs_auth and grown and self._since(c.PATCH_REAUTHORIZE_BEFORE_CONFIRMED):
            needs_auth = True
        if needs_auth and (authorized is None or priced.totals.total > authorized.amount):
            try:
                await self._authorize(priced.totals.total)
            except ActivityError as exc:
                if _error_type(exc) != DECLINED:
                    raise
                await self._reserve(old_wanted, v.ship_to.country)
                raise EditRefused(
                    "payment_declined", f"the new total was declined: {_error_message(exc)}"
                ) from None
            if authorized is not None:
                await self._void(authorized)
        self._take_allocation(reserve)
        self._later = self._missing(reserve)
        v.lines = priced.lines
        v.totals = priced.totals
        v.promotion = priced.promotion
        if self._v2 and self._status == S.BACKORDERED:
            self._hold(reserve)
            if not reserve.ok:
                await workflow.execute_local_activity_method(
                    InventoryActivities.backorder,
                    BackorderInput(
                        order_id=v.order_id,
                        lines=self._wanted(v.lines),
                        ship_country=country,
                        split=self._v3,
                    ),
                    start_to_close_timeout=LOCAL,
                )
        workflow.upsert_search_attributes(
            [
                c.SA_SKUS.value_set([ln.sku for ln in v.lines]),
                c.SA_TOTAL.value_set(float(v.totals.total)),
            ]
        )

    async def _rebook(self) -> None:
        for s in self.view_.shipments:
            if s.status == "booked":
                await self._cancel_shipment(s)
        await self._book()

    async def _cancel(self, req: c.CancelRequest) -> None:
        async with self._lock:
            try:
                self._check_version(req)
                check_cancellable(self.view_.status)
                if self._children:
                    await self._cancel_parcels(req)
                elif self._merged_into is not None:
                    await self._withdraw_from_merge(req)
                else:
                    await self._close(S.CANCELLED, req.actor, req.reason or "cancelled")
            except EditRefused as exc:
                self._note("cancel_refused", req.actor, f"{exc.rule}: {exc.message}")
                await self._flush()
                raise
            await self._flush()

    async def _close(self, status: OrderStatus, actor: str, reason: str) -> None:
        """End the order, compensating in reverse order of the steps taken: parcel, payment,
        stock. A parcel the carrier already took refuses, and then nothing is undone."""
        v = self.view_
        for s in v.shipments:
            # A split order's parcels are cancelled by their own workflows.
            if s.status == "booked" and not s.shipment_no:
                await self._cancel_shipment(s)
        payment = self._active_payment()
        if payment is not None:
            await self._void(payment)
        await self._reserve({})
        if self._stock_held:
            self._note("stock_released", "system", describe_stock(self._wanted(v.lines)))
        if self._backordered:
            await self._close_backorder()
        for p in v.payments:
            if p.status == "paid":
                # Paid outside the gateway: staff send the money back the same way.
                p.status = "refund_due"
                self._alert("refund_due", "warning", f"refund {p.amount} {p.currency} by hand")
        self._set_status(status, actor, reason)
        if self._v2:
            self._resolve_alerts({a.kind for a in self._alerts if a.kind != "refund_due"})
            self._notify("cancelled", reason)

    async def _close_backorder(self) -> None:
        self._backordered = False
        await workflow.execute_local_activity_method(
            InventoryActivities.close_backorder, self.view_.order_id, start_to_close_timeout=LOCAL
        )

    async def _cancel_shipment(self, s: ShipmentRecord) -> None:
        await steps.cancel_booking(self.view_.order_id, s.shipment_id, self._inp.policy)
        s.status = "cancelled"
        self._note("shipment_cancelled", "system", f"tracking {s.tracking_number}")

    async def _decide_review(self, req: c.ReviewDecision) -> None:
        async with self._lock:
            try:
                self._check_version(req)
                if self._status != S.PENDING_REVIEW or self._review is not None:
                    raise EditRefused(
                        "not_pending_review", f"the order is {self._status}, not waiting for review"
                    )
            except EditRefused as refusal:
                self._note("review_refused", req.actor, refusal.message)
                await self._flush()
                raise
            self._review = req
            self._note(f"review_{req.decision}", req.actor, req.note)

    async def _receive_payment(self, req: c.PaymentReceived) -> None:
        async with self._lock:
            v = self.view_
            once = workflow.patched(c.PATCH_PAYMENT_ONCE)
            booking = f"{v.payment_method.value}:{req.reference or v.order_id}"
            booked = next((p for p in v.payments if p.authorization_id == booking), None)
            if once and booked is not None and booked.amount == req.amount:
                # The same payment again (a resent webhook, a double click, a signal beside the
                # API): it was booked once, and that stands.
                return
            try:
                self._check_version(req)
                if once and booked is not None:
                    raise EditRefused(
                        "reference_reused",
                        f"reference {req.reference} was booked already, for {booked.amount}",
                    )
                if once and self._paid:
                    raise EditRefused(
                        "already_paid",
                        f"the order is paid already ({self._paid_by()}); this is not booked",
                    )
                # Money may come before the order asks for it (a transfer sent at once, or an
                # order still in review): it pays the order when it gets there.
                early = once and self._status in (S.PLACED, S.PENDING_REVIEW, S.BACKORDERED)
                awaiting = self._status == S.AWAITING_PAYMENT or early
                if not awaiting or not v.payment_method.pays_later:
                    raise EditRefused(
                        "not_awaiting_payment",
                        f"the order is {self._status} and paid by {v.payment_method.value}",
                    )
                if req.amount != v.totals.total:
                    raise EditRefused(
                        "amount_mismatch",
                        f"the order total is {v.totals.total} {v.totals.currency}, "
                        f"not {req.amount}",
                    )
            except EditRefused as exc:
                if once and req.arrived and exc.rule != "version_mismatch":
                    # Money that really arrived is not turned away: it is kept, to be sent back.
                    self._keep_unapplied(req, booking, exc.message)
                    await self._flush()
                    return
                self._note("payment_refused", req.actor, f"{exc.rule}: {exc.message}")
                await self._flush()
                raise
            v.payments.append(
                PaymentRecord(
                    authorization_id=booking,
                    amount=req.amount,
                    currency=v.totals.currency,
                    status="paid",
                    captured=req.amount,
                )
            )
            self._paid = True
            self._note("payment_received", req.actor, f"{req.amount} ref {req.reference}")

    async def _settle_refund(self, req: c.RefundSettled) -> None:
        async with self._lock:
            v = self.view_
            payment = next((p for p in v.payments if p.authorization_id == req.payment_id), None)
            try:
                self._check_version(req)
                if payment is None or payment.status != "refund_due":
                    raise EditRefused(
                        "no_refund_due",
                        f"no money is due back on {req.payment_id}: "
                        + (payment.status if payment else "no such payment"),
                    )
            except EditRefused as exc:
                self._note("refund_refused", req.actor, f"{exc.rule}: {exc.message}")
                await self._flush()
                raise
            payment.status = "refunded"
            self._note(
                "refund_settled",
                req.actor,
                f"{payment.amount} {payment.currency} of {payment.authorization_id} sent back"
                + (f", ref {req.reference}" if req.reference else "")
                + (f": {req.note}" if req.note else ""),
            )
            if not any(p.status == "refund_due" for p in v.payments):
                self._resolve_alerts({"overpaid", "refund_due"})
            await self._flush()

    def _paid_by(self) -> str:
        return ", ".join(p.authorization_id for p in self.view_.payments if p.status == "paid")

    def _keep_unapplied(self, req: c.PaymentReceived, booking: str, reason: str) -> None:
        v = self.view_
        v.payments.append(
            PaymentRecord(
                authorization_id=booking,
                amount=req.amount,
                currency=v.totals.currency,
                status="refund_due",
                captured=req.amount,
            )
        )
        self._note("payment_unapplied", req.actor, f"{req.amount} ref {req.reference}: {reason}")
        self._alert(
            "overpaid",
            "warning",
            f"{req.amount} {v.totals.currency} arrived (ref {req.reference}) but {reason}: "
            "send it back",
        )

    async def _change_method(self, req: c.PaymentMethodChange) -> None:
        async with self._lock:
            v = self.view_
            try:
                self._check_version(req)
                if self._status != S.AWAITING_PAYMENT or v.payment_method.pays_later:
                    raise EditRefused(
                        "not_waiting_for_payment_method",
                        f"the order is {self._status}; a new payment method is not needed",
                    )
            except EditRefused as refusal:
                self._note("payment_method_refused", req.actor, refusal.message)
                await self._flush()
                raise
            self._token = req.token
            v.payment_method = req.method
            self._new_method = True
            self._note("payment_method_changed", req.actor, req.method.value)

    async def _act_on_exception(self, req: c.ExceptionAction) -> None:
        async with self._lock:
            v = self.view_
            try:
                self._check_version(req)
                if not v.open_exception:
                    raise EditRefused("no_open_exception", "the order has no open delivery problem")
                if self._merged_into is not None and req.action != "contact_customer":
                    raise EditRefused(
                        "merged_parcel_exception",
                        f"the order ships in the merged parcel {self._merged_into}: staff reship "
                        "or refund it by hand; contact_customer is available",
                    )
                if req.action == "contact_customer":
                    self._notify("delivery_issue", req.note or "we will contact you")
                elif self._children:
                    await self._settle_parcel(req)
                elif req.action == "reship":
                    await self._reship()
                else:
                    await self._refund_all(req.actor, req.note or "delivery problem")
            except EditRefused as exc:
                self._note("exception_action_refused", req.actor, exc.message)
                await self._flush()
                raise
            self._note(f"exception_{req.action}", req.actor, req.note)
            # A split order may have several parcels in trouble: the alert stays until the last.
            if req.action != "contact_customer" and not self._parcel_exceptions:
                v.open_exception = ""
                self._resolve_alerts({"carrier_exception"})
            await self._flush()

    async def _settle_parcel(self, req: c.ExceptionAction) -> None:
        """Reship or refund the split order's parcel that has been in trouble longest."""
        v = self.view_
        no = self._parcel_exceptions[0]
        rec = self._parcel(no)
        assert rec is not None
        if req.action == "reship":
            batch = max(s.batch for s in v.shipments) + 1
            reserve = await self._reserve(rec.lines, batch=batch, split=False)
            if not reserve.ok:
                raise EditRefused(
                    "insufficient_stock", f"cannot reship {no}: {self._shortage_text(reserve)}"
                )
            rec.status = "reshipped"
            # Paid for already: the new parcel captures nothing and carries the old one's money.
            await self._start_parcel(reserve.parcels[0], Decimal("0.00"))
            v.shipments[-1].amount = rec.amount
            v.shipments[-1].captured = rec.captured
            await self._children[no].signal(c.SIGNAL_SHIPMENT_WRITE_OFF)
        else:
            money = self._after_sales_money()
            payment = (
                refund_source(v.payments, rec.captured, self._held_refunds())
                if money
                else next((p for p in v.payments if p.captured > 0), None)
            )
            if payment is not None and rec.captured > 0:
                key = f"{v.order_id}:refund:{no}"
                await steps.refund(
                    v.order_id, key, payment.authorization_id, rec.captured, self._inp.policy
                )
                if not money:
                    refunded = sum(
                        (s.captured for s in v.shipments if s.status == "refunded"), rec.captured
                    )
                    payment.status = (
                        "refunded" if refunded >= payment.captured else "partly_refunded"
                    )
                self._book_refund(
                    payment.authorization_id, rec.captured, key, f"parcel {no}", rec.lines, money
                )
            await self._children[no].signal(c.SIGNAL_SHIPMENT_WRITE_OFF)
            rec.status = "refunded"
            self._notify("refunded", f"{rec.captured} {v.totals.currency} for parcel {no}")
        self._parcel_exceptions.pop(0)
        self._follow_combined_status()

    async def _start_return(self, req: c.ReturnRequest) -> None:
        async with self._lock:
            v = self.view_
            status = S.COMPLETED if self._window_closed else v.status
            money = self._after_sales_money()
            exchange: PricedOrder | None = None
            try:
                self._check_version(req)
                check_returnable(status, v.lines, self._returned, req.lines)
                if req.kind == "exchange" and not req.exchange_lines:
                    raise EditRefused("exchange_lines_missing", "name the goods wanted instead")
                if money and req.kind == "exchange" and req.exchange_lines:
                    exchange = await self._price_exchange(req.exchange_lines)
            except EditRefused as exc:
                self._note("return_refused", req.actor, f"{exc.rule}: {exc.message}")
                await self._flush()
                raise
            asked = {ln.sku: ln.quantity for ln in merge_lines(req.lines)}
            for sku, qty in asked.items():
                self._returned[sku] = self._returned.get(sku, 0) + qty
            everything = all(self._returned.get(ln.sku, 0) >= ln.quantity for ln in v.lines)
            returned_lines = [
                ln.model_copy(
                    update={"quantity": asked[ln.sku]}
                    | ({"line_total": round_money(ln.unit_price * asked[ln.sku])} if money else {})
                )
                for ln in v.lines
                if ln.sku in asked
            ]
            self._return_count += 1
            return_id = c.return_number(v.order_id, self._return_count)
            self._return_asked[return_id] = asked
            amount = refund_amount(
                v.lines,
                v.totals,
                [LineInput(sku=k, quantity=q) for k, q in asked.items()],
                everything and len(self._open_returns) == 0 and self._return_count == 1,
            )
            if money:
                # The payment with money left takes the refund, however much went back before;
                # never more than was kept, whatever the rounding of each return's share.
                held = self._held_refunds()
                amount = min(amount, refund_cap(v.payments, sum(held.values(), ZERO)))
                source = refund_source(v.payments, amount, held)
            else:
                source = next((p for p in v.payments if p.status == "captured"), None)
            authorization_id = source.authorization_id if source else None
            self._return_refunds[return_id] = (authorization_id, amount)
            inp = c.ReturnInput(
                return_id=return_id,
                order_id=v.order_id,
                customer=v.customer,
                ship_to=v.ship_to,
                warehouse=v.warehouse,
                lines=returned_lines,
                refund_amount=amount,
                currency=v.totals.currency,
                authorization_id=authorization_id,
                kind=req.kind,
                exchange_lines=req.exchange_lines,
                exchange=exchange,
                payment=(
                    PaymentInput(method=v.payment_method, token=self._token)
                    if exchange is not None
                    else None
                ),
                channel=v.channel,
                reason=req.reason,
                evidence=req.evidence,
                requested_at=workflow.now(),
                actor=req.actor,
                policy=self._inp.policy,
            )
            handle = await workflow.start_child_workflow(
                c.RETURN_WORKFLOW,
                inp,
                id=c.return_workflow_id(return_id),
                result_type=c.ReturnResult,
                static_summary=f"{return_id} · return of {v.order_id} · {req.kind}",
            )
            self._open_returns.add(return_id)
            v.related.append({"type": "return", "id": return_id})
            self._set_status(S.RETURN_REQUESTED, req.actor, f"return {return_id}: {req.reason}")
            await self._flush()
        self._return_tasks.append(asyncio.create_task(self._follow_return(return_id, handle)))

    async def _follow_return(self, return_id: str, handle: Awaitable[c.ReturnResult]) -> None:
        result = await handle
        async with self._lock:
            v = self.view_
            money = self._after_sales_money()
            self._open_returns.discard(return_id)
            authorization_id, _ = self._return_refunds.pop(return_id, (None, ZERO))
            asked = self._return_asked[return_id]
            if result.status == "rejected":
                for sku, qty in asked.items():
                    self._returned[sku] = self._returned.get(sku, 0) - qty
                self._note("return_rejected", "staff", return_id)
            if result.exchange_order_id:
                v.related.append({"type": "exchange", "id": result.exchange_order_id})
                self._note("return_exchanged", "system", result.exchange_order_id)
            if result.status == "refund_due":
                what = "the exchange difference " if result.exchange_order_id else ""
                self._alert("refund_due", "warning", f"return {return_id}: refund {what}by hand")
            elif result.status == "refunded" or result.refunded > 0:
                if not money:
                    for p in v.payments:
                        if p.status == "captured":
                            p.status = "partly_refunded"
                exchanged = result.status == "exchanged"
                reason = f"return {return_id}"
                self._book_refund(
                    authorization_id,
                    result.refunded,
                    f"{return_id}:difference" if exchanged else f"{return_id}:refund",
                    f"exchange difference, {reason}" if exchanged else reason,
                    {} if exchanged else asked,
                    money,
                )
                self._notify("refunded", f"{result.refunded} {v.totals.currency}")
                self._note("return_refunded", "gateway", f"{return_id}: {result.refunded}")
            if not self._open_returns:
                fully = all(self._returned.get(ln.sku, 0) >= ln.quantity for ln in v.lines)
                if result.status == "refunded" and fully:
                    if not money:
                        for p in v.payments:
                            p.status = "refunded"
                    self._set_status(S.REFUNDED, "system", "every line returned and refunded")
                elif any(q > 0 for q in self._returned.values()):
                    self._set_status(S.RETURNED, "system", f"return {return_id} done")
                else:
                    self._set_status(S.DELIVERED, "system", "no open return")
            await self._flush()

    async def _reship(self) -> None:
        v = self.view_
        batch = max((s.batch for s in v.shipments), default=1) + 1
        reserve = await self._reserve(self._wanted(v.lines), batch=batch)
        if not reserve.ok:
            raise EditRefused(
                "insufficient_stock", f"cannot reship: {self._shortage_text(reserve)}"
            )
        await self._book(batch)

    async def _refund_all(self, actor: str, reason: str) -> None:
        v = self.view_
        money = self._after_sales_money()
        refunded = Decimal("0.00")
        for p in v.payments:
            # What is left of each payment, also after earlier partial refunds.
            left = refundable(p) if money else p.captured
            at_card = at_gateway(p) if money else p.status == "captured"
            if at_card and left > 0:
                key = f"{v.order_id}:refund:{p.authorization_id}"
                await steps.refund(v.order_id, key, p.authorization_id, left, self._inp.policy)
                self._book_refund(p.authorization_id, left, key, reason, {}, money)
                if not money:
                    p.status = "refunded"
                refunded += left
            elif money and p.status == "paid" and not is_credit(p) and left > 0:
                # Paid outside the gateway: staff send the money back the same way.
                p.status = "refund_due"
                self._alert("refund_due", "warning", f"refund {left} {p.currency} by hand")
        self._set_status(S.REFUNDED, actor, f"refunded {refunded}: {reason}")
        self._notify("refunded", f"{refunded} {v.totals.currency}")

    # ---- after-sales money --------------------------------------------------------------

    def _after_sales_money(self) -> bool:
        """Whether this order books each refund against the payment it went back to and values
        exchanges when they are asked for (asked where the change is; orders in flight keep the
        branch they took)."""
        return workflow.patched(c.PATCH_AFTER_SALES_MONEY)

    def _held_refunds(self) -> dict[str, Decimal]:
        """What the open returns will give back, by the authorization it goes back to ('' for
        money to be sent back by hand)."""
        held: dict[str, Decimal] = {}
        for authorization_id, amount in self._return_refunds.values():
            key = authorization_id or ""
            held[key] = held.get(key, ZERO) + amount
        return held

    def _book_refund(
        self,
        authorization_id: str | None,
        amount: Decimal,
        reference: str,
        reason: str,
        lines: dict[str, int],
        set_status: bool,
    ) -> None:
        """Count money given back against the payment it went to, once per reference (the
        refund's idempotency key at the gateway)."""
        v = self.view_
        payment = next((p for p in v.payments if p.authorization_id == authorization_id), None)
        if payment is None or amount <= 0 or any(r.reference == reference for r in v.refunds):
            return
        payment.refunded += amount
        if set_status:
            payment.status = refund_status(payment.captured, payment.refunded)
        v.refunds.append(
            RefundRecord(
                reference=reference,
                authorization_id=payment.authorization_id,
                amount=amount,
                currency=v.totals.currency,
                reason=reason,
                lines=dict(lines),
                at=workflow.now(),
            )
        )

    async def _price_exchange(self, lines: list[LineInput]) -> PricedOrder:
        """The goods wanted in exchange, priced as the exchange order will charge them."""
        try:
            priced: PricedOrder = await workflow.execute_local_activity_method(
                InventoryActivities.price,
                PriceInput(lines=lines, country=self.view_.ship_to.country),
                start_to_close_timeout=LOCAL,
            )
        except ActivityError as exc:
            raise EditRefused("exchange_lines_invalid", _error_message(exc)) from None
        except ApplicationError as exc:
            # A local activity's business error arrives unwrapped.
            if exc.type == PRICING_ERROR:
                raise EditRefused("exchange_lines_invalid", _pricing_problem(exc)) from None
            if exc.type == DELIVERY_NOT_OFFERED:
                raise EditRefused("exchange_lines_invalid", exc.message) from None
            raise
        return priced

    # ---- activities with their idempotency keys ---------------------------------------

    async def _reserve(
        self,
        wanted: dict[str, int],
        country: str | None = None,
        batch: int = 1,
        split: bool | None = None,
        parcels: list[ParcelRequest] | None = None,
    ) -> ReserveResult:
        return await workflow.execute_local_activity_method(
            InventoryActivities.reserve,
            ReserveInput(
                order_id=self.view_.order_id,
                lines=wanted,
                ship_country=country or self.view_.ship_to.country,
                batch=batch,
                # A reshipment (batch > 1) is one parcel from one warehouse.
                split=self._v3 and batch == 1 if split is None else split,
                # The first allocation may ship part now if the customer allowed it.
                partial=self._v3 and batch == 1 and self._inp.allow_partial_shipment,
                parcels=parcels,
                strategy=self._inp.policy.allocation_strategy,
            ),
            start_to_close_timeout=LOCAL,
        )

    async def _authorize(self, amount: Decimal) -> PaymentRecord:
        v = self.view_
        self._auth_count += 1
        # The key is made here, deterministically, so every retry of this step reuses it.
        result = await workflow.execute_activity_method(
            PaymentActivities.authorize,
            AuthorizeInput(
                order_id=v.order_id,
                idempotency_key=f"{v.order_id}:auth:{self._auth_count}",
                amount=amount,
                currency=v.totals.currency,
                token=self._token,
            ),
            start_to_close_timeout=REMOTE,
            retry_policy=self._remote_retry(),
        )
        record = PaymentRecord(
            authorization_id=result.authorization_id,
            amount=amount,
            currency=v.totals.currency,
            status="authorized",
        )
        v.payments.append(record)
        self._note("payment_authorized", "gateway", f"{amount} {v.totals.currency}")
        return record

    async def _capture(self) -> None:
        v = self.view_
        payment = self._active_payment()
        if payment is None:
            return
        amount = v.totals.total
        await steps.capture(
            v.order_id,
            f"{v.order_id}:capture:{payment.authorization_id}",
            payment.authorization_id,
            amount,
            self._inp.policy,
        )
        payment.status = "captured"
        payment.captured = amount
        self._note("payment_captured", "gateway", f"{amount} {payment.currency}")

    async def _void(self, payment: PaymentRecord) -> None:
        await steps.void(self.view_.order_id, payment.authorization_id, self._inp.policy)
        payment.status = "voided"
        self._note("payment_voided", "gateway", f"{payment.amount} {payment.currency}")

    def _remote_retry(self) -> RetryPolicy:
        return c.remote_retry(self._inp.policy)

    # ---- SLA, alerts and notifications ------------------------------------------------

    async def _watch_sla(self) -> None:
        """Alert staff once whenever the order sits in one status longer than its SLA."""
        while not self._closed:
            await self._watch_status(self._status)

    async def _watch_status(self, status: OrderStatus) -> None:
        limit = self._inp.policy.sla_seconds.get(status.value)
        if limit is not None:
            moved = await self._wait_for(lambda: self._status != status, limit)
            if moved or self._closed:
                return
            self._alert(
                "sla_breached", "warning", f"the order has been {status} for over {limit:.0f} s"
            )
            await self._flush()
        await workflow.wait_condition(lambda: self._status != status or self._closed)

    def _alert(self, kind: str, severity: str, message: str) -> None:
        v = self.view_
        self._alerts.append(
            AlertRecord(
                seq=len(self._alerts) + 1,
                at=workflow.now(),
                kind=kind,
                severity=severity,
                message=message,
            )
        )
        self._note(f"alert:{kind}", "system", message)
        if self._v2:
            subject, text = render_alert(kind, v, message)
            self._queue_mail(f"alert-{kind}", STAFF, subject, text)

    def _resolve_alerts(self, kinds: set[str]) -> None:
        for a in self._alerts:
            if a.kind in kinds:
                a.resolved = True

    def _notify(self, kind: str, detail: str = "") -> None:
        if not self._v2:
            return
        subject, text = render(kind, self.view_, detail)
        self._queue_mail(kind, self.view_.customer.email, subject, text)
        self._note(f"notified:{kind}", "system", f"to {self.view_.customer.email}")

    def _queue_mail(self, kind: str, to: str, subject: str, text: str) -> None:
        n = self._sent_kinds.get(kind, 0) + 1
        self._sent_kinds[kind] = n
        self._outgoing.append(
            Notification(
                key=f"{self.view_.order_id}:{kind}:{n}",
                order_id=self.view_.order_id,
                kind=kind,
                to=to,
                subject=subject,
                text=text,
            )
        )
        self._queued_in[self._outgoing[-1].key] = workflow.info().get_current_history_length()

    # ---- state, history and the read model --------------------------------------------

    @property
    def view_(self) -> OrderView:
        return self._view

    @property
    def _status(self) -> OrderStatus:
        return self.view_.status

    @property
    def _closed(self) -> bool:
        return self.view_.status in (S.CANCELLED, S.FAILED, S.COMPLETED, S.REFUNDED)

    def _open_authorization(self) -> PaymentRecord | None:
        """The authorization parcels still capture from (some may have already)."""
        return next(
            (p for p in self.view_.payments if p.status in ("authorized", "partially_captured")),
            None,
        )

    def _active_payment(self) -> PaymentRecord | None:
        return next((p for p in self.view_.payments if p.status == "authorized"), None)

    def _line_inputs(self) -> list[LineInput]:
        return [LineInput(sku=ln.sku, quantity=ln.quantity) for ln in self.view_.lines]

    @staticmethod
    def _wanted(lines: list[OrderLine]) -> dict[str, int]:
        return {ln.sku: ln.quantity for ln in lines}

    @staticmethod
    def _shortage_text(reserve: ReserveResult) -> str:
        return ", ".join(
            f"{s['sku']}: wanted {s['wanted']}, available {s['available']}"
            for s in reserve.shortages
        )

    def _summary(self) -> str:
        v = self.view_
        return (
            f"{v.customer.name} · {len(v.lines)} line(s) · {v.totals.total} {v.totals.currency}"
            f" · {v.payment_method.value} · ship to {v.ship_to.city}, {v.ship_to.country}"
        )

    async def _wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        try:
            await workflow.wait_condition(lambda: self._closed, timeout=timedelta(seconds=seconds))
        except TimeoutError:
            pass

    async def _wait_for(self, condition: Callable[[], bool], seconds: float) -> bool:
        """Wait until `condition` holds, the order closes, or `seconds` pass; is it met?"""
        if seconds > 0 and not condition():
            try:
                await workflow.wait_condition(
                    lambda: condition() or self._closed, timeout=timedelta(seconds=seconds)
                )
            except TimeoutError:
                pass
        return condition()

    def _note(self, kind: str, actor: str, detail: str = "") -> None:
        v = self.view_
        v.updated_at = workflow.now()
        if not kind.endswith(UNCHANGED):
            v.version += 1
        self._history.append(
            HistoryEntry(
                seq=len(self._history) + 1,
                at=v.updated_at,
                kind=kind,
                # As long as the read model's column: a longer one would fail its every write.
                actor=actor[:ACTOR_LENGTH],
                status=v.status,
                detail=detail,
            )
        )

    def _check_fresh(self, req: c.EditRequest) -> None:
        """Refuse an update that reaches the order after its caller stopped waiting for it."""
        if req.not_after is not None and workflow.now() > req.not_after:
            raise ApplicationError(
                f"the change came at {workflow.now().isoformat()}, after its deadline "
                f"{req.not_after.isoformat()}; nothing changed",
                type=c.UPDATE_EXPIRED,
                non_retryable=True,
            )

    def _check_version(self, req: c.EditRequest) -> None:
        """Refuse an edit made against a version of the order that is no longer current."""
        have = self.view_.version
        if req.expected_version is not None and req.expected_version != have:
            raise EditRefused(
                "version_mismatch",
                f"the order changed since version {req.expected_version} (it is at {have}): "
                "read it again",
            )

    def _since(self, patch: str) -> bool:
        """Whether this order takes the change behind `patch`; asked where the change is."""
        return self._all_changes or workflow.patched(patch)

    def _set_status(self, status: OrderStatus, actor: str, reason: str) -> None:
        v = self.view_
        v.status = status
        v.status_reason = reason
        self._note(f"status:{status.value}", actor, reason)
        workflow.upsert_search_attributes([c.SA_STATUS.value_set(status.value)])
        workflow.set_current_details(
            f"**{status.value}** — {reason}\n\n{self._summary()}"
            + "".join(f"\n\nTracking: {s.tracking_number} ({s.status})" for s in v.shipments)
        )

    def _current_view(self, with_history: bool) -> OrderView:
        view = self.view_.model_copy(deep=True)
        view.history = list(self._history) if with_history else []
        view.alerts = list(self._alerts)
        return view

    async def _flush(self) -> None:
        """Write the view, new history entries, alerts and the emails due in one local
        activity.

        An email cannot be taken back, so it leaves only once the workflow task that decided
        it has completed: a local activity runs before its task is recorded, and a lost task
        may be followed by one that decides otherwise. Emails of earlier tasks are due in any
        later one; a short timer makes sure a later one comes. (Older orders send each batch
        from a regular activity, steps.write.)
        """
        mail = self._due_mail()
        if self._saved_seq == len(self._history):
            if self._mail_with_next_task:
                if mail:
                    await workflow.execute_local_activity_method(
                        RecordActivities.enqueue_mail, mail, start_to_close_timeout=LOCAL
                    )
                self._mailed(mail)
            return
        seq = len(self._history)
        view = self._current_view(with_history=False)
        view.history = self._history[self._saved_seq :]
        mail_later = (
            not self._mail_with_next_task
            and bool(mail)
            and workflow.patched(c.PATCH_MAIL_AFTER_COMMIT)
        )
        await workflow.execute_local_activity_method(
            RecordActivities.save_view,
            SaveViewInput(
                view=view,
                seq=seq,
                version=steps.task_version(),
                new_customer_details=self._dirty_customer,
                notifications=[] if mail_later else mail,
                alerts=list(self._alerts),
            ),
            start_to_close_timeout=LOCAL,
        )
        if mail_later:
            await steps.write(RecordActivities.enqueue_mail, mail, after_commit=True)
        self._saved_seq = max(self._saved_seq, seq)
        self._mailed(mail)
        self._dirty_customer = False

    def _due_mail(self) -> list[Notification]:
        if not self._mail_with_next_task:
            return list(self._outgoing)
        now = workflow.info().get_current_history_length()
        return [n for n in self._outgoing if self._queued_in[n.key] < now]

    def _mailed(self, mail: list[Notification]) -> None:
        # Flushes may overlap (a handler and the main path): drop exactly what this one wrote.
        written = {n.key for n in mail}
        self._outgoing = [n for n in self._outgoing if n.key not in written]
        if not self._mail_with_next_task:
            return
        timer = self._mail_timer
        if self._outgoing and timer is None:
            self._mail_timer = asyncio.create_task(self._mail_soon())
        elif not self._outgoing and timer is not None:
            self._mail_timer = None
            timer.cancel()

    async def _mail_soon(self) -> None:
        """Wake the workflow in a later task for the emails still waiting, if nothing else
        does first."""
        await workflow.sleep(max(0.001, self._inp.policy.mail_hold_seconds))
        self._mail_timer = None
        await self._flush()
