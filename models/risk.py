"""Risk rules that send an order to staff review (§2.1); plain Python, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class RiskThresholds:
    """Where each rule starts to flag an order."""

    amount_over: Decimal = Decimal("1000")
    new_customer_amount_over: Decimal = Decimal("300")
    orders_per_hour: int = 5


@dataclass(frozen=True)
class RiskFacts:
    """What the rules look at for one order."""

    total: Decimal
    prior_orders: int
    orders_last_hour: int
    ship_country: str
    bill_country: str | None


def assess(facts: RiskFacts, limits: RiskThresholds) -> list[str]:
    """The reasons this order needs a person to look at it; empty when it does not."""
    reasons = []
    if facts.total > limits.amount_over:
        reasons.append(f"amount {facts.total} is over {limits.amount_over}")
    elif facts.prior_orders == 0 and facts.total > limits.new_customer_amount_over:
        reasons.append(
            f"first order of a new customer, amount {facts.total} is over "
            f"{limits.new_customer_amount_over}"
        )
    if facts.bill_country and facts.bill_country != facts.ship_country:
        reasons.append(
            f"billing country {facts.bill_country} differs from shipping country "
            f"{facts.ship_country}"
        )
    if facts.orders_last_hour >= limits.orders_per_hour:
        reasons.append(f"{facts.orders_last_hour} other orders from this customer in the last hour")
    return reasons
