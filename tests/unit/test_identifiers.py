"""Order numbers and list cursors."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from models.order_number import make_order_number
from models.orders_repo import decode_cursor, encode_cursor
from workflows.contract import order_id_from_workflow_id, order_workflow_id


def test_order_number_shape() -> None:
    n = make_order_number(datetime(2026, 11, 23, 8, 30, tzinfo=UTC), 12345)
    assert re.fullmatch(r"SO-20261123-[0-9A-HJKMNP-TV-Z]{8}", n)


def test_order_numbers_sort_by_time_within_a_day() -> None:
    t0 = datetime(2026, 11, 23, 0, 0, 1, tzinfo=UTC)
    numbers = [make_order_number(t0 + timedelta(milliseconds=7 * i), 8191 - i) for i in range(500)]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == 500


def test_random_part_separates_orders_of_the_same_millisecond() -> None:
    t = datetime(2026, 11, 23, 12, tzinfo=UTC)
    assert make_order_number(t, 1) != make_order_number(t, 2)


def test_workflow_id_round_trip() -> None:
    assert order_id_from_workflow_id(order_workflow_id("SO-1")) == "SO-1"


def test_cursor_round_trip_and_garbage() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert decode_cursor(encode_cursor("newest", at, "SO-9"), "newest") == (at, "SO-9")
    cursor = encode_cursor("total_desc", Decimal("12.50"), "SO-7")
    assert decode_cursor(cursor, "total_desc") == (Decimal("12.50"), "SO-7")
    with pytest.raises(ValueError, match="sort=total_desc"):
        decode_cursor(cursor, "oldest")
    with pytest.raises(ValueError):
        decode_cursor("definitely-not", "newest")
