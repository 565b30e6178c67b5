"""OrderWorkflow: one durable workflow per order, from placement to completion (§2, §3)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.inventory import (
        InventoryActivities,
        PriceInput,
        ReserveInput,
        ReserveResult,
    )
    from activities.logistics import (
        CARRIER_REFUSED,
        BookInput,
        CancelShipmentInput,
        LogisticsActivities,
    )
    from activities.payment import (
        DECLINED,
        AuthorizeInput,
        CaptureInput,
        PaymentActivities,
        VoidInput,
    )
    from activities.records import RecordActivities, SaveViewInput
    from models.order import (
        HistoryEntry,
        LineInput,
        OrderLine,
        OrderView,
        PaymentRecord,
        PricedOrder,
        ShipmentRecord,
    )
    from models.status import (
        EditRefused,
        OrderStatus,
        check_address_editable,
        check_cancellable,
        check_lines_editable,
    )
    from workflows import contract as c

S = OrderStatus
LOCAL = timedelta(seconds=30)
REMOTE = timedelta(seconds=30)
# Carrier events that mean the parcel has left the warehouse.
SHIPPED_EVENTS = {"PICKED_UP", "IN_TRANSIT", "OUT_FOR_DELIVERY"}
EXCEPTION_EVENTS = {"DELIVERY_FAILED", "LOST", "DAMAGED", "ADDRESS_PROBLEM"}


def _refusal(exc: EditRefused) -> ApplicationError:
    return ApplicationError(
        exc.message, {"rule": exc.rule}, type=c.EDIT_REFUSED, non_retryable=True
    )


def _error_type(exc: BaseException) -> str:
    cause = exc.cause if isinstance(exc, ActivityError) else exc
    return cause.type or "" if isinstance(cause, ApplicationError) else ""


def _error_message(exc: BaseException) -> str:
    cause = exc.cause if isinstance(exc, ActivityError) else exc
    return cause.message if isinstance(cause, ApplicationError) else str(exc)


@workflow.defn(name=c.ORDER_WORKFLOW)
class OrderWorkflow:
    """Orchestrates stock, payment and carrier for one order; edits arrive as updates or signals."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._events: list[c.CarrierEvent] = []
        self._seen_events: set[str] = set()
        self._history: list[HistoryEntry] = []
        self._saved_seq = 0
        self._dirty_customer = True
        self._view: OrderView | None = None

    # ---- queries, updates and signals -------------------------------------------------

    @workflow.query(name=c.QUERY_VIEW)
    def view(self) -> OrderView:
        """The order as it stands now, with its full history."""
        return self._current_view(with_history=True)

    @workflow.update(name=c.UPDATE_MODIFY)
    async def modify_order(self, req: c.ModifyRequest) -> OrderView:
        """Change address, contact or lines; refused with the rule that forbids it."""
        try:
            await self._modify(req)
        except EditRefused as exc:
            raise _refusal(exc) from None
        return self._current_view(with_history=True)

    @modify_order.validator
    def _validate_modify(self, req: c.ModifyRequest) -> None:
        if req.ship_to is None and req.contact is None and req.lines is None:
            raise ValueError("nothing to change: give ship_to, contact or lines")
        if req.lines is not None and not req.lines:
            raise ValueError("an order needs at least one line; cancel it instead")

    @workflow.update(name=c.UPDATE_CANCEL)
    async def cancel_order(self, req: c.CancelRequest) -> OrderView:
        """Cancel and compensate; refused once the parcel has shipped."""
        try:
            await self._cancel(req)
        except EditRefused as exc:
            raise _refusal(exc) from None
        return self._current_view(with_history=True)

    @workflow.signal(name=c.SIGNAL_MODIFY)
    async def modify_signal(self, req: c.ModifyRequest) -> None:
        """The same edit as the update, for the CLI and the UI; a refusal lands in the history."""
        try:
            self._validate_modify(req)
            await self._modify(req)
        except (EditRefused, ValueError):
            pass

    @workflow.signal(name=c.SIGNAL_CANCEL)
    async def cancel_signal(self, req: c.CancelRequest) -> None:
        """The same cancel as the update, for the CLI and the UI."""
        try:
            await self._cancel(req)
        except EditRefused:
            pass

    @workflow.signal(name=c.SIGNAL_CARRIER_EVENT)
    def carrier_event(self, event: c.CarrierEvent) -> None:
        """A tracking event from the carrier's webhook; duplicates are dropped."""
        if event.event_id not in self._seen_events:
            self._seen_events.add(event.event_id)
            self._events.append(event)

    # ---- the main path ----------------------------------------------------------------

    @workflow.run
    async def run(self, inp: c.OrderInput) -> OrderView:
        """Run the order to a terminal status and return its final view."""
        self._inp = inp
        self._token = inp.payment.token
        self._view = OrderView(
            order_id=inp.order_id,
            status=S.PLACED,
            customer=inp.customer,
            channel=inp.channel,
            channel_order_id=inp.channel_order_id,
            ship_to=inp.ship_to,
            payment_method=inp.payment.method,
            lines=inp.priced.lines,
            totals=inp.priced.totals,
            promotion=inp.priced.promotion,
            notes=inp.notes,
            created_at=inp.created_at,
            updated_at=workflow.now(),
        )
        self._auth_count = 0
        self._booking_count = 0
        self._note("placed", inp.actor or f"customer:{inp.customer.id}", self._summary())

        async with self._lock:
            await self._confirm()
        await self._flush()

        if inp.policy.warehouse_release_seconds > 0 and not self._closed:
            await self._wait(inp.policy.warehouse_release_seconds)
        async with self._lock:
            if not self._closed:
                await self._pick_pack_book()
        await self._flush()

        while not self._closed and self._status not in (S.DELIVERED,):
            await workflow.wait_condition(lambda: bool(self._events) or self._closed)
            async with self._lock:
                while self._events and not self._closed:
                    await self._on_carrier_event(self._events.pop(0))
            await self._flush()

        if self._status == S.DELIVERED:
            await self._wait(inp.policy.after_sales_window_seconds)
            async with self._lock:
                if self._status == S.DELIVERED:
                    self._set_status(S.COMPLETED, "system", "after-sales window closed")
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._flush()
        return self._current_view(with_history=True)

    async def _confirm(self) -> None:
        reserve = await self._reserve(self._wanted(self.view_.lines))
        if not reserve.ok:
            detail = ", ".join(
                f"{s['sku']}: wanted {s['wanted']}, available {s['available']}"
                for s in reserve.shortages
            )
            self._set_status(S.FAILED, "system", f"out of stock: {detail}")
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

    async def _pick_pack_book(self) -> None:
        v = self.view_
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
            payment = self._active_payment()
            if payment is not None:
                await self._void(payment)
            await self._reserve({})
            self._set_status(S.FAILED, "carrier", f"shipment refused: {_error_message(exc)}")

    async def _book(self) -> None:
        v = self.view_
        self._booking_count += 1
        booking = await workflow.execute_activity_method(
            LogisticsActivities.book,
            BookInput(
                order_id=v.order_id,
                idempotency_key=f"{v.order_id}:ship:{self._booking_count}",
                ship_to=v.ship_to,
                items=[{"sku": ln.sku, "quantity": ln.quantity} for ln in v.lines],
            ),
            start_to_close_timeout=REMOTE,
            retry_policy=self._remote_retry(),
        )
        v.shipments.append(
            ShipmentRecord(
                shipment_id=booking.shipment_id,
                tracking_number=booking.tracking_number,
                warehouse=v.warehouse,
                status="booked",
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
        if self._status == S.PACKED and ev.type in SHIPPED_EVENTS | {"DELIVERED"}:
            # The parcel left: stock leaves the books and the payment is captured, once.
            await workflow.execute_local_activity_method(
                InventoryActivities.ship, v.order_id, start_to_close_timeout=LOCAL
            )
            await self._capture()
            self._set_status(S.SHIPPED, "carrier", detail)
        if ev.type == "DELIVERED":
            self._set_status(S.DELIVERED, "carrier", detail)
        elif ev.type in EXCEPTION_EVENTS:
            self._note("carrier_exception", "carrier", detail)
        elif self._status != S.SHIPPED or ev.type != "PICKED_UP":
            self._note("tracking", "carrier", detail)

    # ---- edits ------------------------------------------------------------------------

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
            if any(s.status == "booked" for s in v.shipments):
                await self._rebook()
        if req.contact is not None:
            if req.contact.email is not None:
                v.customer.email = req.contact.email
            if req.contact.phone is not None:
                v.customer.phone = req.contact.phone
            self._dirty_customer = True
            changes.append("contact")
        if req.lines is not None:
            changes.append("lines")
        self._note("modified", req.actor, ", ".join(changes) + " changed")

    async def _reprice(self, lines: list[LineInput], country: str) -> None:
        v = self.view_
        try:
            priced: PricedOrder = await workflow.execute_local_activity_method(
                InventoryActivities.price,
                PriceInput(lines=lines, country=country, promotion_code=self._inp.promotion_code),
                start_to_close_timeout=LOCAL,
            )
        except ActivityError as exc:
            raise EditRefused("lines_invalid", _error_message(exc)) from None
        old_wanted = self._wanted(v.lines)
        reserve = await self._reserve(self._wanted(priced.lines), country)
        if not reserve.ok:
            raise EditRefused(
                "insufficient_stock",
                "not enough stock for the new lines: "
                + ", ".join(f"{s['sku']} available {s['available']}" for s in reserve.shortages),
            )
        authorized = self._active_payment()
        if authorized is None or priced.totals.total > authorized.amount:
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
        v.warehouse = reserve.warehouse_id
        v.lines = priced.lines
        v.totals = priced.totals
        v.promotion = priced.promotion
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
            v = self.view_
            try:
                check_cancellable(v.status)
                # Compensate in reverse order of the steps taken: parcel, payment, stock.
                for s in v.shipments:
                    if s.status == "booked":
                        await self._cancel_shipment(s)
            except EditRefused as exc:
                self._note("cancel_refused", req.actor, f"{exc.rule}: {exc.message}")
                await self._flush()
                raise
            payment = self._active_payment()
            if payment is not None:
                await self._void(payment)
            await self._reserve({})
            self._set_status(S.CANCELLED, req.actor, req.reason or "cancelled")
            await self._flush()

    async def _cancel_shipment(self, s: ShipmentRecord) -> None:
        try:
            await workflow.execute_activity_method(
                LogisticsActivities.cancel,
                CancelShipmentInput(
                    order_id=self.view_.order_id,
                    idempotency_key=f"{self.view_.order_id}:ship-cancel:{s.shipment_id}",
                    shipment_id=s.shipment_id,
                ),
                start_to_close_timeout=REMOTE,
                retry_policy=self._remote_retry(),
            )
        except ActivityError as exc:
            if _error_type(exc) != CARRIER_REFUSED:
                raise
            raise EditRefused(
                "parcel_already_picked_up",
                f"the carrier has already picked up the parcel: {_error_message(exc)}",
            ) from None
        s.status = "cancelled"
        self._note("shipment_cancelled", "system", f"tracking {s.tracking_number}")

    # ---- activities with their idempotency keys ---------------------------------------

    async def _reserve(self, wanted: dict[str, int], country: str | None = None) -> ReserveResult:
        return await workflow.execute_local_activity_method(
            InventoryActivities.reserve,
            ReserveInput(
                order_id=self.view_.order_id,
                lines=wanted,
                ship_country=country or self.view_.ship_to.country,
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
        await workflow.execute_activity_method(
            PaymentActivities.capture,
            CaptureInput(
                order_id=v.order_id,
                idempotency_key=f"{v.order_id}:capture:{payment.authorization_id}",
                authorization_id=payment.authorization_id,
                amount=amount,
            ),
            start_to_close_timeout=REMOTE,
            retry_policy=self._remote_retry(),
        )
        payment.status = "captured"
        payment.captured = amount
        self._note("payment_captured", "gateway", f"{amount} {payment.currency}")

    async def _void(self, payment: PaymentRecord) -> None:
        await workflow.execute_activity_method(
            PaymentActivities.void,
            VoidInput(
                order_id=self.view_.order_id,
                idempotency_key=f"{self.view_.order_id}:void:{payment.authorization_id}",
                authorization_id=payment.authorization_id,
            ),
            start_to_close_timeout=REMOTE,
            retry_policy=self._remote_retry(),
        )
        payment.status = "voided"
        self._note("payment_voided", "gateway", f"{payment.amount} {payment.currency}")

    def _remote_retry(self) -> RetryPolicy:
        # Outages are retried until the third party is back; business refusals are
        # non-retryable ApplicationErrors raised by the activities themselves.
        return RetryPolicy(
            initial_interval=timedelta(milliseconds=200),
            maximum_interval=timedelta(seconds=self._inp.policy.retry_max_interval_seconds),
        )

    # ---- state, history and the read model --------------------------------------------

    @property
    def view_(self) -> OrderView:
        assert self._view is not None
        return self._view

    @property
    def _status(self) -> OrderStatus:
        return self.view_.status

    @property
    def _closed(self) -> bool:
        return self.view_.status in (S.CANCELLED, S.FAILED, S.COMPLETED)

    def _active_payment(self) -> PaymentRecord | None:
        return next((p for p in self.view_.payments if p.status == "authorized"), None)

    def _line_inputs(self) -> list[LineInput]:
        return [LineInput(sku=ln.sku, quantity=ln.quantity) for ln in self.view_.lines]

    @staticmethod
    def _wanted(lines: list[OrderLine]) -> dict[str, int]:
        return {ln.sku: ln.quantity for ln in lines}

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

    def _note(self, kind: str, actor: str, detail: str = "") -> None:
        v = self.view_
        v.updated_at = workflow.now()
        self._history.append(
            HistoryEntry(
                seq=len(self._history) + 1,
                at=v.updated_at,
                kind=kind,
                actor=actor,
                status=v.status,
                detail=detail,
            )
        )

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
        return view

    async def _flush(self) -> None:
        """Write the view and the history entries not yet written, in one local activity."""
        if self._saved_seq == len(self._history):
            return
        seq = len(self._history)
        view = self.view_.model_copy(deep=True)
        view.history = self._history[self._saved_seq :]
        await workflow.execute_local_activity_method(
            RecordActivities.save_view,
            SaveViewInput(view=view, seq=seq, new_customer_details=self._dirty_customer),
            start_to_close_timeout=LOCAL,
        )
        self._saved_seq = seq
        self._dirty_customer = False
