"""The API's calls into Temporal: start, view, update and signal an order workflow."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from temporalio.api.enums.v1 import PendingWorkflowTaskState, TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateStage,
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
from orderflow.settings import get_settings
from workflows import contract as c
from workflows import purchase_contract as pc

QUERY_TIMEOUT = timedelta(seconds=5)
T = TypeVar("T")
UPDATE_TIMEOUT = timedelta(seconds=60)
# Seconds a client is asked to wait before asking again after an update the order has not taken.
RETRY_PENDING_SECONDS = 5
# Refusals that are not a conflict with the order's state: a request the order cannot take
# as written (422), and one made against a version of the order that is no longer current.
REFUSAL_STATUS = {"lines_invalid": 422, "version_mismatch": 412}


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
    update_id: str | None = None,
) -> T:
    """Run a validated update; a refusal becomes 409 with the rule, a bad request 422, and an
    update the order does not take in time 504 (see `_not_taken`)."""
    handle = _handle(client, order_id)
    # One id for every attempt below, so that asking again joins the update already sent.
    update_id = update_id or str(uuid.uuid4())
    deadline = asyncio.get_running_loop().time() + UPDATE_TIMEOUT.total_seconds()
    not_after: datetime | None = None
    if isinstance(arg, c.EditRequest):
        settings = get_settings()
        not_after = datetime.now(UTC) + timedelta(seconds=settings.update_expire_seconds)
        arg = arg.model_copy(update={"not_after": not_after})
    try:
        accepted = await _accepted(
            client, handle, order_id, name, arg, result, update_id, deadline, not_after
        )
        return await _outcome(accepted, order_id, deadline)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == c.UPDATE_EXPIRED:
            raise _try_again(order_id, "it came too late to be taken") from None
        if isinstance(cause, ApplicationError) and cause.type == c.EDIT_REFUSED:
            details = cause.details[0] if cause.details else {}
            rule = details.get("rule", "refused") if isinstance(details, dict) else "refused"
            raise ApiError(REFUSAL_STATUS.get(rule, 409), rule, cause.message, noted=True) from None
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        raise ApiError(422, "invalid_edit", message) from None
    except RPCError as exc:
        if not _not_running(exc):
            raise
        if await _still_running(client, order_id):
            # The same statuses come back when the update reached a workflow task that then
            # failed or timed out (a crash, an overloaded worker): the server dropped the
            # update, nothing changed, try again.
            raise _try_again(order_id, "it could not take the change just now") from None
        raise ApiError(
            409, "closed", f"{order_id} is no longer running and cannot change"
        ) from None


def _try_again(order_id: str, why: str) -> ApiError:
    return ApiError(
        503,
        "try_again",
        f"{order_id}: {why}; nothing changed, try again",
        headers={"Retry-After": "1"},
    )


async def _accepted(
    client: Client,
    handle: WorkflowHandle[Any, Any],
    order_id: str,
    name: str,
    arg: Any,
    result: type[Any],
    update_id: str,
    deadline: float,
    not_after: datetime | None = None,
) -> WorkflowUpdateHandle[Any]:
    """Send the update and wait until the order accepts it (its validator let it through).

    An edit of an order carries `not_after`: the order refuses it if it comes later, so once
    that has passed (and no workflow task that began before it is still running) nothing can
    change any more, and the answer is 503 try_again. Other updates: a healthy workflow
    accepts within milliseconds; one that has not, after a short while, is looked at, and two
    looks in a row that find it unable to take the update end the wait (504)."""
    loop = asyncio.get_running_loop()
    settings = get_settings()
    look_after = settings.update_accept_seconds
    skew = timedelta(seconds=settings.clock_skew_seconds)
    suspected: str | None = None
    while True:
        wait = min(look_after, deadline - loop.time())
        if not_after is not None:
            left = (not_after + skew - datetime.now(UTC)).total_seconds()
            wait = min(wait, left) if left > 0 else min(wait, look_after)
        try:
            async with asyncio.timeout(max(0.0, wait)):
                return await handle.start_update(
                    name,
                    arg,
                    wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                    id=update_id,
                    result_type=result,
                    rpc_timeout=UPDATE_TIMEOUT,
                )
        except (TimeoutError, RPCTimeoutOrCancelledError):
            # The client turns a cancellation into its timeout error: a request being torn
            # down (the server stopping) must still stop here.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError() from None
        if not_after is not None:
            if datetime.now(UTC) >= not_after + skew and not await _taking_it(
                handle, not_after + skew
            ):
                raise _try_again(order_id, "the order did not take the change in time")
            if loop.time() < deadline:
                continue
        stuck = await _why_not_accepted(client, handle)
        if stuck is not None and stuck == suspected:
            raise _not_taken(order_id, stuck)
        if loop.time() >= deadline:
            raise _not_taken(order_id, f"it did not take it within {UPDATE_TIMEOUT.seconds} s")
        suspected = stuck


async def _taking_it(handle: WorkflowHandle[Any, Any], cutoff: datetime) -> bool:
    """Whether a workflow task that began before `cutoff` is running: it may still accept."""
    desc = await handle.describe()
    raw = desc.raw_description
    if desc.status != WorkflowExecutionStatus.RUNNING or not raw.HasField("pending_workflow_task"):
        return False
    task = raw.pending_workflow_task
    started = task.state == PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_STARTED
    return started and task.started_time.ToDatetime(tzinfo=UTC) <= cutoff


async def _why_not_accepted(client: Client, handle: WorkflowHandle[Any, Any]) -> str | None:
    """Why the order cannot take an update now, or None when it may still take it soon."""
    desc = await handle.describe()
    raw = desc.raw_description
    if desc.status != WorkflowExecutionStatus.RUNNING or not raw.HasField("pending_workflow_task"):
        # Ended (the next attempt says so), or the update is being taken right now.
        return None
    task = raw.pending_workflow_task
    waiting = task.state == PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_SCHEDULED
    if waiting and not await _polled_since(
        client, raw.execution_config.task_queue.name, task.scheduled_time.ToDatetime()
    ):
        return "no worker is running it just now"
    if task.attempt > 1:
        return "its workflow task keeps failing"
    return None


async def _polled_since(client: Client, task_queue: str, since: datetime) -> bool:
    """Whether any worker asked the task queue for work since then."""
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return any(p.last_access_time.ToDatetime() >= since for p in described.pollers)


async def _outcome(accepted: WorkflowUpdateHandle[T], order_id: str, deadline: float) -> T:
    """The accepted update's result. Once accepted, the change is the order's to finish: losing
    sight of it now is never a 503, which would tell the client that nothing changed."""
    remaining = deadline - asyncio.get_running_loop().time()
    try:
        async with asyncio.timeout(max(remaining, get_settings().update_accept_seconds)):
            return await accepted.result(rpc_timeout=UPDATE_TIMEOUT)
    except (TimeoutError, RPCTimeoutOrCancelledError, RPCError):
        raise ApiError(
            504,
            "update_pending",
            f"{order_id} took the change but has not answered how it ended; look at the order, "
            "or repeat the request with the same Idempotency-Key to get its outcome",
            headers={"Retry-After": str(RETRY_PENDING_SECONDS)},
        ) from None


def _not_taken(order_id: str, why: str) -> ApiError:
    # Not a 503: the Temporal server keeps an update it was sent, whoever stops waiting for
    # it, and hands it to the order when the order runs again (a worker back, a fix
    # deployed). So the change may still be made; a retry under the same Idempotency-Key
    # carries the same update id and gets that update's outcome instead of making another.
    return ApiError(
        504,
        "update_pending",
        f"{order_id} has not taken the change: {why}. It may still take it when it runs "
        "again; repeat the request with the same Idempotency-Key to get its outcome",
        headers={"Retry-After": str(RETRY_PENDING_SECONDS)},
    )


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
