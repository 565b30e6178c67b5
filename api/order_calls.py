"""The API's calls into Temporal: start, view, update and signal an order workflow."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError
from models.order import OrderView
from models.purchasing import PurchaseOrderView
from models.returns import ReturnView
from workflows import contract as c
from workflows import purchase_contract as pc

QUERY_TIMEOUT = timedelta(seconds=5)
T = TypeVar("T")
UPDATE_TIMEOUT = timedelta(seconds=60)


def _handle(client: Client, order_id: str) -> WorkflowHandle[Any, Any]:
    return client.get_workflow_handle(c.workflow_id_for_reference(order_id))


async def start_order(client: Client, task_queue: str, inp: c.OrderInput) -> None:
    """Start the order's workflow; starting it again (a retried request) is a no-op."""
    totals = inp.priced.totals
    try:
        await client.start_workflow(
            c.ORDER_WORKFLOW,
            inp,
            id=c.order_workflow_id(inp.order_id),
            task_queue=task_queue,
            result_type=OrderView,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(c.SA_STATUS, "PLACED"),
                    SearchAttributePair(c.SA_CUSTOMER, inp.customer.id),
                    SearchAttributePair(c.SA_CHANNEL, inp.channel.value),
                    SearchAttributePair(c.SA_SKUS, [ln.sku for ln in inp.priced.lines]),
                    SearchAttributePair(c.SA_TOTAL, float(totals.total)),
                    *c.customer_search_attributes(inp.customer),
                ]
            ),
            static_summary=(
                f"{inp.order_id} · {inp.customer.name} ({inp.customer.id}) · "
                f"{totals.total} {totals.currency} · {inp.channel.value} · "
                f"{inp.delivery.value} delivery"
            ),
            static_details="\n".join(
                f"- {ln.quantity} x {ln.sku} {ln.name}" for ln in inp.priced.lines
            ),
        )
    except WorkflowAlreadyStartedError:
        pass


async def query_view(client: Client, order_id: str) -> OrderView | None:
    """The running workflow's view, or None when it cannot answer (closed, gone, no worker)."""
    return await _query(client, order_id, c.QUERY_VIEW, OrderView)


async def query_return(client: Client, return_id: str) -> ReturnView | None:
    """The running return's view, or None when it cannot answer."""
    return await _query(client, return_id, c.QUERY_RETURN_VIEW, ReturnView)


async def _query(client: Client, reference: str, name: str, result: type[T]) -> T | None:
    try:
        return await _handle(client, reference).query(
            name, result_type=result, rpc_timeout=QUERY_TIMEOUT
        )
    except RPCError:
        return None


def _not_running(exc: RPCError) -> bool:
    return exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION)


async def run_update(
    client: Client,
    order_id: str,
    name: str,
    arg: Any,
    result: type[T] = OrderView,  # type: ignore[assignment]
) -> T:
    """Run a validated update; a refusal becomes 409 with the rule, a bad request 422."""
    try:
        return await _handle(client, order_id).execute_update(
            name, arg, result_type=result, rpc_timeout=UPDATE_TIMEOUT
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == c.EDIT_REFUSED:
            details = cause.details[0] if cause.details else {}
            rule = details.get("rule", "refused") if isinstance(details, dict) else "refused"
            raise ApiError(409, rule, cause.message) from None
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        raise ApiError(422, "invalid_edit", message) from None
    except RPCError as exc:
        if not _not_running(exc):
            raise
        if await _still_running(client, order_id):
            # The same statuses come back when the update reached a workflow task that then
            # failed or timed out (a crash, an overloaded worker): nothing changed, try again.
            raise ApiError(
                503,
                "try_again",
                f"{order_id} could not take the change just now; nothing changed, try again",
                headers={"Retry-After": "1"},
            ) from None
        raise ApiError(
            409, "closed", f"{order_id} is no longer running and cannot change"
        ) from None


async def _still_running(client: Client, order_id: str) -> bool:
    try:
        desc = await _handle(client, order_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return desc.status == WorkflowExecutionStatus.RUNNING


async def send_signal(client: Client, order_id: str, name: str, arg: Any = None) -> bool:
    """Signal the order; False when its workflow is no longer running."""
    try:
        handle = _handle(client, order_id)
        await (handle.signal(name) if arg is None else handle.signal(name, arg))
    except RPCError as exc:
        if _not_running(exc):
            return False
        raise
    return True


async def start_consolidation(
    client: Client, task_queue: str, inp: c.ConsolidationInput
) -> c.ConsolidationView:
    """Start a merged shipment and wait until its orders have answered."""
    handle = await client.start_workflow(
        c.CONSOLIDATION_WORKFLOW,
        inp,
        id=c.consolidation_workflow_id(inp.consolidation_id),
        task_queue=task_queue,
        result_type=c.ConsolidationView,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [SearchAttributePair(c.SA_CUSTOMER, inp.customer_id)]
        ),
        memo={"orders": inp.order_ids},
        static_summary=f"{inp.consolidation_id} · merged shipment of " + ", ".join(inp.order_ids),
    )
    return await handle.execute_update(
        c.UPDATE_MERGE_FORMED, result_type=c.ConsolidationView, rpc_timeout=UPDATE_TIMEOUT
    )


async def query_consolidation(client: Client, consolidation_id: str) -> c.ConsolidationView | None:
    """A merged shipment as it stands, or None if there is none."""
    return await _query(client, consolidation_id, c.QUERY_CONSOLIDATION_VIEW, c.ConsolidationView)


async def start_purchase_order(client: Client, task_queue: str, inp: pc.PurchaseOrderInput) -> None:
    """Start the purchase order's workflow; a retry finds the one already running."""
    v = inp.view
    await client.start_workflow(
        pc.PURCHASE_ORDER_WORKFLOW,
        inp,
        id=pc.purchase_order_workflow_id(v.po_id),
        task_queue=task_queue,
        result_type=PurchaseOrderView,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=TypedSearchAttributes(
            [SearchAttributePair(c.SA_SKUS, [ln.sku for ln in v.lines])]
        ),
        static_summary=(
            f"{v.po_id} · purchase order to {v.supplier.name} ({v.supplier.id}) · "
            f"{v.total_cost} {v.currency} · {v.warehouse_id}"
        ),
    )


async def query_purchase_order(client: Client, po_id: str) -> PurchaseOrderView | None:
    """The running purchase order's view, or None when it cannot answer."""
    return await _query(client, po_id, pc.QUERY_PO_VIEW, PurchaseOrderView)
