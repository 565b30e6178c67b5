"""What every report (§8) shares: the period it covers, what counts as a sale, shares.

The reports themselves live in `models/sales_reports.py` (what sold), `models/customer_reports.py`
(who came back, what they chose) and `models/order_flow_reports.py` (how orders moved, how
stock turned).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, func

from models.status import MAIN_PATH
from models.status import OrderStatus as S
from models.tables import Order, Product

DEFAULT_DAYS = 30

# An order is a sale from the moment its payment is authorized (CONFIRMED) for as long as the
# money is kept. Before confirmation it may never be paid; CANCELLED and FAILED never were
# sales; REFUNDED gave all the money back. A partly returned order (RETURN_REQUESTED,
# RETURNED) stays a sale at its full amount: the return rate reports returns on their own.
SALE_STATUSES: tuple[str, ...] = tuple(
    s.value for s in (*MAIN_PATH[MAIN_PATH.index(S.CONFIRMED) :], S.RETURN_REQUESTED, S.RETURNED)
)

# Products without a category are grouped under this name rather than an empty one.
UNCATEGORISED = "uncategorised"
CATEGORY: ColumnElement[Any] = func.coalesce(func.nullif(Product.category, ""), UNCATEGORISED)

SHARE = Decimal("0.0001")


@dataclass(frozen=True)
class Period:
    """Whole days in UTC from `first` to `last`, both included."""

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.first > self.last:
            raise ValueError(f"the period starts ({self.first}) after it ends ({self.last})")

    @classmethod
    def ending(cls, last: date, days: int = DEFAULT_DAYS) -> Period:
        """The `days` days up to and including `last`."""
        return cls(last - timedelta(days=days - 1), last)

    @property
    def since(self) -> datetime:
        return datetime.combine(self.first, time(), UTC)

    @property
    def until(self) -> datetime:
        """The first moment after the period."""
        return datetime.combine(self.last + timedelta(days=1), time(), UTC)

    def holds(self, moment: Any) -> ColumnElement[bool]:
        """SQL: the moment lies in the period."""
        return (moment >= self.since) & (moment < self.until)


def placed_in(period: Period) -> ColumnElement[bool]:
    """SQL: the order was placed in the period, whatever became of it."""
    return period.holds(Order.created_at)


def sold_in(period: Period) -> ColumnElement[bool]:
    """SQL: the order was placed in the period and counts as a sale."""
    return placed_in(period) & Order.status.in_(SALE_STATUSES)


def share(part: int, whole: int) -> Decimal:
    """`part` as a fraction of `whole` to four places; nothing of nothing is zero."""
    if not whole:
        return Decimal("0").quantize(SHARE)
    return (Decimal(part) / Decimal(whole)).quantize(SHARE)
