"""The replenishment forecast on series whose answers are worked out by hand."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from models.replenishment import StockPosition, moving_average, suggest

WEEK = [3, 5, 0, 4, 2, 6, 1]  # 21 units in 7 days: 3 a day


def test_moving_average_uses_the_last_window_days() -> None:
    assert moving_average([100, 100, *WEEK], 7) == 3
    # Days before the first order count as days without demand.
    assert moving_average([2, 2], 4) == 1
    assert moving_average([2, 0, 0], 3) == Fraction(2, 3)
    with pytest.raises(ValueError):
        moving_average(WEEK, 0)


def test_order_due_brings_position_up_to_target_in_whole_packs() -> None:
    s = suggest(
        "SKU-A",
        WEEK,
        window=7,
        lead_time_days=5,
        review_days=7,
        safety_stock=10,
        position=StockPosition(available=12, on_order=10, backordered=2),
        pack_size=12,
    )
    # Reorder point 3*5 + 10 = 25; target 3*(5+7) + 10 = 46; position 12 + 10 - 2 = 20.
    assert (s.daily_demand, s.reorder_point, s.target, s.position) == (Decimal("3.00"), 25, 46, 20)
    # 46 - 20 = 26 units, in packs of 12: 36.
    assert s.quantity == 36 and s.due
    assert "reorder point 25" in s.explanation and "packs of 12 = 36" in s.explanation


def test_nothing_due_above_the_reorder_point() -> None:
    s = suggest(
        "SKU-A",
        WEEK,
        window=7,
        lead_time_days=5,
        review_days=7,
        safety_stock=10,
        position=StockPosition(available=26),
    )
    assert s.reorder_point == 25 and s.quantity == 0 and not s.due
    assert "nothing to order" in s.explanation


def test_position_exactly_at_reorder_point_orders() -> None:
    s = suggest(
        "SKU-A",
        WEEK,
        window=7,
        lead_time_days=5,
        review_days=7,
        safety_stock=10,
        position=StockPosition(available=25),
    )
    assert s.quantity == 46 - 25


def test_fractional_demand_is_exact() -> None:
    # 2 units in 3 days over 3 days of lead time is exactly 2 units, not 3 after rounding up.
    s = suggest(
        "SKU-B",
        [2, 0, 0],
        window=3,
        lead_time_days=3,
        review_days=3,
        safety_stock=0,
        position=StockPosition(available=0),
    )
    assert (s.daily_demand, s.reorder_point, s.target, s.quantity) == (Decimal("0.67"), 2, 4, 4)


def test_no_demand_and_no_safety_stock_orders_nothing() -> None:
    s = suggest(
        "SKU-C",
        [],
        window=28,
        lead_time_days=10,
        review_days=7,
        safety_stock=0,
        position=StockPosition(available=0),
    )
    assert s.quantity == 0
