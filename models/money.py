"""Money as Decimal with one rounding rule, and currency checked on every sum."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


class CurrencyMismatch(ValueError):
    """Two amounts in different currencies were combined."""


def round_money(amount: Decimal) -> Decimal:
    """The single rounding rule of the system: half up to the cent."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def same_currency(currencies: Iterable[str]) -> str:
    """The one currency shared by every item, or CurrencyMismatch."""
    found = set(currencies)
    if len(found) != 1:
        raise CurrencyMismatch(f"amounts in several currencies: {sorted(found)}")
    return found.pop()
