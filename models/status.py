"""Order statuses and the rules of what may change in which status (§2, §3)."""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    """Where an order stands; the customer sees these names."""

    PLACED = "PLACED"
    PENDING_REVIEW = "PENDING_REVIEW"
    AWAITING_PAYMENT = "AWAITING_PAYMENT"
    BACKORDERED = "BACKORDERED"
    CONFIRMED = "CONFIRMED"
    PICKING = "PICKING"
    PACKED = "PACKED"
    SHIPPED = "SHIPPED"
    PARTIALLY_SHIPPED = "PARTIALLY_SHIPPED"
    DELIVERED = "DELIVERED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    RETURN_REQUESTED = "RETURN_REQUESTED"
    RETURNED = "RETURNED"
    REFUNDED = "REFUNDED"


S = OrderStatus

# The order of the main path; edits are allowed "until" a status, meaning strictly before it.
MAIN_PATH: tuple[OrderStatus, ...] = (
    S.PLACED,
    S.PENDING_REVIEW,
    S.AWAITING_PAYMENT,
    S.BACKORDERED,
    S.CONFIRMED,
    S.PICKING,
    S.PACKED,
    S.PARTIALLY_SHIPPED,
    S.SHIPPED,
    S.DELIVERED,
    S.COMPLETED,
)
TERMINAL: frozenset[OrderStatus] = frozenset({S.COMPLETED, S.CANCELLED, S.FAILED, S.REFUNDED})
# Statuses in which the order process has ended and PostgreSQL holds the final view.
CLOSED: frozenset[OrderStatus] = TERMINAL | {S.RETURNED}


class EditRefused(Exception):
    """An edit broke a rule; `rule` names it for the caller."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


def _before(status: OrderStatus, limit: OrderStatus) -> bool:
    if status not in MAIN_PATH:
        return False
    return MAIN_PATH.index(status) < MAIN_PATH.index(limit)


def check_lines_editable(status: OrderStatus) -> None:
    """Lines may change until picking starts."""
    if not _before(status, S.PICKING):
        raise EditRefused(
            "lines_locked_after_picking",
            f"order lines can only change before picking starts; the order is {status}",
        )


def check_address_editable(status: OrderStatus) -> None:
    """Address and contact may change until the (last) parcel ships; a split order that is
    partly shipped re-addresses the parcels that have not left."""
    if not _before(status, S.SHIPPED):
        raise EditRefused(
            "address_locked_after_shipping",
            f"the address and contact can only change before shipping; the order is {status}",
        )


def check_cancellable(status: OrderStatus) -> None:
    """Cancel is possible until the (last) parcel ships; afterwards the return flow applies.
    A partly shipped split order cancels the parcels that have not left."""
    if status in (S.CANCELLED, S.FAILED):
        raise EditRefused("already_closed", f"the order is already {status}")
    if not _before(status, S.SHIPPED):
        raise EditRefused(
            "cancel_locked_after_shipping",
            f"an order can only be cancelled before it ships; the order is {status}. "
            "Request a return instead.",
        )
