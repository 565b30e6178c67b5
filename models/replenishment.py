"""Replenishment (§7): when to reorder a SKU and how much, from recent demand; no I/O.

The forecast is a moving average: the units ordered per day over the last `window` days. An
order is due when the stock position (available + on order - waiting backorders) no longer
covers the demand of the supplier's lead time plus the safety stock (the reorder point). It then
brings the position up to the demand of lead time + review period + safety stock, in whole packs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction


@dataclass(frozen=True)
class StockPosition:
    available: int
    on_order: int = 0
    backordered: int = 0

    @property
    def units(self) -> int:
        return self.available + self.on_order - self.backordered


@dataclass(frozen=True)
class Suggestion:
    sku: str
    daily_demand: Decimal
    reorder_point: int
    target: int
    position: int
    quantity: int
    explanation: str

    @property
    def due(self) -> bool:
        return self.quantity > 0


def moving_average(daily_units: Sequence[int], window: int) -> Fraction:
    """Mean units per day over the last `window` days; days missing from the series count 0.

    Exact, so that a demand of 2 units in 3 days over 3 days of lead time is 2, not 2.0000001.
    """
    if window <= 0:
        raise ValueError("window must be at least one day")
    recent = list(daily_units)[-window:]
    return Fraction(sum(recent), window)


def _whole_packs(units: int, pack_size: int) -> int:
    return math.ceil(units / pack_size) * pack_size if units > 0 else 0


def suggest(
    sku: str,
    daily_units: Sequence[int],
    *,
    window: int,
    lead_time_days: int,
    review_days: int,
    safety_stock: int,
    position: StockPosition,
    pack_size: int = 1,
) -> Suggestion:
    """How much of `sku` to order now (0 when the position still covers the reorder point)."""
    daily = moving_average(daily_units, window)
    reorder_point = math.ceil(daily * lead_time_days + safety_stock)
    target = math.ceil(daily * (lead_time_days + review_days) + safety_stock)
    have = position.units
    quantity = _whole_packs(target - have, pack_size) if have <= reorder_point else 0
    shown = (Decimal(daily.numerator) / daily.denominator).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )
    why = (
        f"{window}-day average {shown}/day x {lead_time_days} days lead time "
        f"+ safety stock {safety_stock} = reorder point {reorder_point}; "
        f"position {have} (available {position.available} + on order {position.on_order} "
        f"- backordered {position.backordered})"
    )
    if quantity:
        why += (
            f" is at or below it: order up to {target} "
            f"({lead_time_days}+{review_days} days of demand + safety stock) = {target - have}"
        )
        if quantity != target - have:
            why += f", rounded up to packs of {pack_size} = {quantity}"
    else:
        why += " is above it: nothing to order"
    return Suggestion(sku, shown, reorder_point, target, have, quantity, why)
