"""Which edit is allowed in which status (§3), with no I/O."""

from __future__ import annotations

import pytest

from models.status import (
    EditRefused,
    OrderStatus,
    check_address_editable,
    check_cancellable,
    check_lines_editable,
)

S = OrderStatus
BEFORE_PICKING = [S.PLACED, S.PENDING_REVIEW, S.AWAITING_PAYMENT, S.BACKORDERED, S.CONFIRMED]
# A partly shipped split order still re-addresses and cancels the parcels that have not left.
PICKED_NOT_SHIPPED = [S.PICKING, S.PACKED, S.PARTIALLY_SHIPPED]
SHIPPED_OR_LATER = [S.SHIPPED, S.DELIVERED, S.COMPLETED]
CLOSED = [S.CANCELLED, S.FAILED, S.RETURN_REQUESTED, S.RETURNED, S.REFUNDED]


@pytest.mark.parametrize("status", BEFORE_PICKING)
def test_everything_editable_before_picking(status: OrderStatus) -> None:
    check_lines_editable(status)
    check_address_editable(status)
    check_cancellable(status)


@pytest.mark.parametrize("status", PICKED_NOT_SHIPPED)
def test_lines_locked_once_picking(status: OrderStatus) -> None:
    with pytest.raises(EditRefused) as err:
        check_lines_editable(status)
    assert err.value.rule == "lines_locked_after_picking"
    check_address_editable(status)
    check_cancellable(status)


@pytest.mark.parametrize("status", SHIPPED_OR_LATER)
def test_nothing_editable_once_shipped(status: OrderStatus) -> None:
    for check, rule in (
        (check_lines_editable, "lines_locked_after_picking"),
        (check_address_editable, "address_locked_after_shipping"),
        (check_cancellable, "cancel_locked_after_shipping"),
    ):
        with pytest.raises(EditRefused) as err:
            check(status)
        assert err.value.rule == rule


@pytest.mark.parametrize("status", CLOSED)
def test_closed_orders_refuse_edits(status: OrderStatus) -> None:
    with pytest.raises(EditRefused):
        check_lines_editable(status)
    with pytest.raises(EditRefused):
        check_address_editable(status)
    with pytest.raises(EditRefused):
        check_cancellable(status)


def test_cancel_refusal_points_to_returns() -> None:
    with pytest.raises(EditRefused) as err:
        check_cancellable(S.SHIPPED)
    assert "return" in err.value.message.lower()


def test_cancelling_twice_is_refused_as_closed() -> None:
    with pytest.raises(EditRefused) as err:
        check_cancellable(S.CANCELLED)
    assert err.value.rule == "already_closed"
