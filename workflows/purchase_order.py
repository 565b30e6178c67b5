"""PurchaseOrderWorkflow: goods ordered from a supplier, from sending to the last receipt (§7)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import workflows.contract as c
    import workflows.purchase_contract as pc
    from activities.purchasing import PurchasingActivities, ReceiveInput, SavePurchaseOrder
    from models.notifications import STAFF, Notification
    from models.purchasing import (
        OPEN_PO,
        PoEvent,
        PoStatus,
        PurchaseOrderView,
        Receipt,
        apply_receipt,
        check_confirm,
        check_open,
        check_receipt,
        status_after_cancel,
    )
    from models.status import EditRefused
    from workflows.steps import refusal, write


def _lines_text(view: PurchaseOrderView) -> str:
    return "\n".join(
        f"  {ln.ordered} x {ln.sku} {ln.name} at {ln.unit_cost} {view.currency}"
        for ln in view.lines
    )


@workflow.defn(name=pc.PURCHASE_ORDER_WORKFLOW)
class PurchaseOrderWorkflow:
    """Sends the order, waits for the supplier's confirmation and the goods, books receipts.

    Each receipt adds stock and serves waiting backorders in one transaction; the orders it
    served are woken here. Ends when everything came, or on cancel (closed short if part came).
    """

    @workflow.init
    def __init__(self, inp: pc.PurchaseOrderInput) -> None:
        # Set before any update is validated, even one that arrives with the first task.
        self._inp = inp
        self.view_ = inp.view.model_copy(deep=True)
        self._lock = asyncio.Lock()
        self._confirmed = False

    @workflow.query(name=pc.QUERY_PO_VIEW)
    def view(self) -> PurchaseOrderView:
        return self.view_.model_copy(deep=True)

    # ---- confirm ------------------------------------------------------------------------

    @workflow.update(name=pc.UPDATE_PO_CONFIRM)
    async def confirm(self, req: pc.PoConfirm) -> PurchaseOrderView:
        """The supplier confirmed the order, with its reference and expected delivery."""
        async with self._lock:
            self._check(check_confirm, self.view_)
            v = self.view_
            v.status = PoStatus.CONFIRMED
            v.supplier_reference = req.supplier_reference
            v.expected_at = req.expected_at
            self._confirmed = True
            detail = f"expected {req.expected_at:%Y-%m-%d}" if req.expected_at else ""
            self._note("confirmed", req.actor, detail)
            await self._save()
        return self.view()

    @confirm.validator
    def _validate_confirm(self, req: pc.PoConfirm) -> None:
        self._check(check_confirm, self.view_)

    # ---- receive ------------------------------------------------------------------------

    @workflow.update(name=pc.UPDATE_PO_RECEIVE)
    async def receive(self, req: pc.PoReceipt) -> PurchaseOrderView:
        """Goods arrived: book them, serve backorders, tell the orders that got their stock."""
        async with self._lock:
            if self._known(req.receipt_id):
                return self.view()
            self._check(check_receipt, self.view_, req.lines)
            after = self.view_.model_copy(deep=True)
            apply_receipt(after, req.lines)
            after.receipts.append(
                Receipt(receipt_id=req.receipt_id, at=workflow.now(), lines=req.lines)
            )
            self._confirmed = True
            self._note_on(
                after,
                "received",
                req.actor,
                ", ".join(f"{q} x {sku}" for sku, q in sorted(req.lines.items())),
            )
            self.view_ = await write(
                PurchasingActivities.receive,
                ReceiveInput(
                    view=after,
                    receipt_id=req.receipt_id,
                    lines=req.lines,
                    strategy=self._inp.policy.allocation_strategy,
                ),
                after_commit=self._after_commit,
            )
            served = self.view_.receipts[-1].backorders_served
        for order_id in served:
            await self._wake(order_id)
        return self.view()

    @receive.validator
    def _validate_receipt(self, req: pc.PoReceipt) -> None:
        if not self._known(req.receipt_id):
            self._check(check_receipt, self.view_, req.lines)

    def _known(self, receipt_id: str) -> bool:
        return any(r.receipt_id == receipt_id for r in self.view_.receipts)

    async def _wake(self, order_id: str) -> None:
        handle = workflow.get_external_workflow_handle(c.order_workflow_id(order_id))
        try:
            await handle.signal(c.SIGNAL_STOCK_ALLOCATED)
        except Exception as exc:
            # A closed order keeps nothing waiting; its held units are released by its own end.
            workflow.logger.warning("could not wake %s: %s", order_id, exc)

    # ---- cancel -------------------------------------------------------------------------

    @workflow.update(name=pc.UPDATE_PO_CANCEL)
    async def cancel(self, req: pc.PoCancel) -> PurchaseOrderView:
        """Nothing more is expected: cancelled, or closed short when part has come."""
        async with self._lock:
            self._check(check_open, self.view_, "cancel")
            v = self.view_
            v.status = status_after_cancel(v)
            self._note(v.status.value.lower(), req.actor, req.reason)
            await self._save(
                self._mail(
                    "cancelled",
                    v.supplier.email,
                    f"Purchase order {v.po_id} is cancelled",
                    f"Please do not send the rest of purchase order {v.po_id}"
                    f"{': ' + req.reason if req.reason else ''}.\n",
                )
            )
        return self.view()

    @cancel.validator
    def _validate_cancel(self, req: pc.PoCancel) -> None:
        self._check(check_open, self.view_, "cancel")

    # ---- the run ------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: pc.PurchaseOrderInput) -> PurchaseOrderView:
        v = self.view_
        self._note("sent", inp.actor, f"to {v.supplier.name} <{v.supplier.email}>")
        await self._save(
            self._mail(
                "sent",
                v.supplier.email,
                f"Purchase order {v.po_id}",
                f"Dear {v.supplier.name},\n\nplease deliver to warehouse {v.warehouse_id}:\n"
                f"{_lines_text(v)}\nTotal {v.total_cost} {v.currency}\n\n"
                f"Please confirm with your reference and delivery date.\n",
            )
        )
        reminder = timedelta(seconds=inp.policy.confirm_reminder_seconds)
        try:
            await workflow.wait_condition(lambda: self._confirmed or self._ended, timeout=reminder)
        except TimeoutError:
            async with self._lock:
                self._note("confirmation_overdue", "system", "staff reminded")
                await self._save(
                    self._mail(
                        "confirmation_overdue",
                        STAFF,
                        f"[orderflow] {v.po_id} not confirmed by {v.supplier.name}",
                        f"Purchase order {v.po_id} was sent {v.created_at:%Y-%m-%d %H:%M} UTC "
                        "and the supplier has not confirmed it.\n",
                    )
                )
        await workflow.wait_condition(lambda: self._ended and workflow.all_handlers_finished())
        return self.view()

    @property
    def _after_commit(self) -> bool:
        return workflow.patched(pc.PATCH_PO_WRITES_AFTER_COMMIT)

    @property
    def _ended(self) -> bool:
        return self.view_.status not in OPEN_PO

    # ---- helpers ------------------------------------------------------------------------

    @staticmethod
    def _check(rule: Callable[..., None], *args: object) -> None:
        try:
            rule(*args)
        except EditRefused as exc:
            raise refusal(exc) from None

    def _note(self, kind: str, actor: str, detail: str = "") -> None:
        self._note_on(self.view_, kind, actor, detail)

    @staticmethod
    def _note_on(view: PurchaseOrderView, kind: str, actor: str, detail: str) -> None:
        now = workflow.now()
        view.history.append(PoEvent(at=now, kind=kind, actor=actor, detail=detail))
        view.updated_at = now

    def _mail(self, kind: str, to: str, subject: str, text: str) -> Notification:
        return Notification(
            key=f"po:{self.view_.po_id}:{kind}",
            order_id=self.view_.po_id,
            kind=f"purchase_order_{kind}",
            to=to,
            subject=subject,
            text=text,
        )

    async def _save(self, *mail: Notification) -> None:
        await write(
            PurchasingActivities.save,
            SavePurchaseOrder(view=self.view_, notifications=list(mail)),
            after_commit=self._after_commit,
        )
