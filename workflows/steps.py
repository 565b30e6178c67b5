"""Activity calls shared by the order and shipment workflows, with their idempotency keys.

Keys are made by the calling workflow, deterministically, so every retry of a step reuses its
key and a third party never acts twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import workflows.contract as c
    from activities.logistics import (
        CARRIER_REFUSED,
        BookInput,
        BookResult,
        CancelShipmentInput,
        LogisticsActivities,
    )
    from activities.payment import CaptureInput, PaymentActivities, RefundInput, VoidInput
    from models.order import Address, DeliveryOption
    from models.status import EditRefused

LOCAL = timedelta(seconds=30)
REMOTE = timedelta(seconds=30)
T = TypeVar("T")
# Carrier events that mean the parcel has left the warehouse.
SHIPPED_EVENTS = frozenset({"PICKED_UP", "IN_TRANSIT", "OUT_FOR_DELIVERY"})
EXCEPTION_EVENTS = frozenset({"DELIVERY_FAILED", "LOST", "DAMAGED", "ADDRESS_PROBLEM"})
# Exceptions the carrier resolves itself (it tries again); the others wait for staff.
SELF_HEALING = frozenset({"DELIVERY_FAILED"})


def error_type(exc: BaseException) -> str:
    """The business error type an activity failed with, or ''."""
    cause = exc.cause if isinstance(exc, ActivityError) else exc
    return cause.type or "" if isinstance(cause, ApplicationError) else ""


def error_message(exc: BaseException) -> str:
    """The message an activity failed with."""
    cause = exc.cause if isinstance(exc, ActivityError) else exc
    return cause.message if isinstance(cause, ApplicationError) else str(exc)


async def book(
    reference: str,
    key: str,
    ship_to: Address,
    items: dict[str, int],
    policy: c.OrderPolicy,
    service: DeliveryOption = DeliveryOption.STANDARD,
) -> BookResult:
    """Book a parcel with the carrier; `reference` routes its tracking webhooks back."""
    return await workflow.execute_activity_method(
        LogisticsActivities.book,
        BookInput(
            order_id=reference,
            idempotency_key=key,
            ship_to=ship_to,
            items=[{"sku": sku, "quantity": q} for sku, q in items.items()],
            service=service,
        ),
        start_to_close_timeout=REMOTE,
        retry_policy=c.remote_retry(policy),
    )


async def cancel_booking(reference: str, carrier_shipment_id: str, policy: c.OrderPolicy) -> None:
    """Cancel a booked parcel; EditRefused once the carrier has picked it up."""
    try:
        await workflow.execute_activity_method(
            LogisticsActivities.cancel,
            CancelShipmentInput(
                order_id=reference,
                idempotency_key=f"{reference}:ship-cancel:{carrier_shipment_id}",
                shipment_id=carrier_shipment_id,
            ),
            start_to_close_timeout=REMOTE,
            retry_policy=c.remote_retry(policy),
        )
    except ActivityError as exc:
        if error_type(exc) != CARRIER_REFUSED:
            raise
        raise EditRefused(
            "parcel_already_picked_up",
            f"the carrier has already picked up the parcel: {error_message(exc)}",
        ) from None


async def capture(
    order_id: str, key: str, authorization_id: str, amount: Decimal, policy: c.OrderPolicy
) -> None:
    """Capture `amount` of an authorization."""
    await workflow.execute_activity_method(
        PaymentActivities.capture,
        CaptureInput(
            order_id=order_id,
            idempotency_key=key,
            authorization_id=authorization_id,
            amount=amount,
        ),
        start_to_close_timeout=REMOTE,
        retry_policy=c.remote_retry(policy),
    )


async def refund(
    order_id: str, key: str, authorization_id: str, amount: Decimal, policy: c.OrderPolicy
) -> None:
    """Give back `amount` of what an authorization captured."""
    await workflow.execute_activity_method(
        PaymentActivities.refund,
        RefundInput(
            order_id=order_id,
            idempotency_key=key,
            authorization_id=authorization_id,
            amount=amount,
        ),
        start_to_close_timeout=REMOTE,
        retry_policy=c.remote_retry(policy),
    )


async def void(order_id: str, authorization_id: str, policy: c.OrderPolicy) -> None:
    """Release what an authorization still holds."""
    await workflow.execute_activity_method(
        PaymentActivities.void,
        VoidInput(
            order_id=order_id,
            idempotency_key=f"{order_id}:void:{authorization_id}",
            authorization_id=authorization_id,
        ),
        start_to_close_timeout=REMOTE,
        retry_policy=c.remote_retry(policy),
    )


def task_version() -> int:
    """When the current workflow task started, in microseconds: what the read model orders a
    workflow's writes by.

    A local activity's write can outlive a task attempt that never completes (the worker or
    the server died, or the task timed out); the attempt that does complete started later, so
    its writes win. History length would not do: the retries of a task and a lost speculative
    task for an update are not in the history, so they share one length.
    """
    return int(workflow.now().timestamp() * 1_000_000)


async def write(method: Callable[[Any, Any], Awaitable[T]], arg: Any, *, after_commit: bool) -> T:
    """Run a database write of this workflow's own: as a local activity, or, `after_commit`,
    as a regular one.

    A local activity runs before its workflow task is recorded: if that task is lost (a crash,
    a timeout) the write stays although the workflow may then take another path. A regular
    activity is only scheduled by a task that completed.
    """
    if after_commit:
        return await workflow.execute_activity_method(method, arg, start_to_close_timeout=LOCAL)
    return await workflow.execute_local_activity_method(method, arg, start_to_close_timeout=LOCAL)


def refusal(exc: EditRefused) -> ApplicationError:
    """A broken rule as the update failure the API answers 409 with."""
    return ApplicationError(
        exc.message, {"rule": exc.rule}, type=c.EDIT_REFUSED, non_retryable=True
    )
