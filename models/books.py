"""An order's books and the money rules of after-sales: what was authorized, captured,
refunded and kept; which payment a refund goes back to; how an exchange settles; no I/O.

A payment record is one of three things. An authorization at the gateway (its id is the
gateway's own). Money paid outside the gateway, a transfer or an invoice paid: the order names
it `<method>:<reference>`; its status is `paid`, `refund_due` once it must go back by hand, and
`refunded` once staff sent it back. Exchange credit: the value of goods sent back that pays for
an exchange order (`exchange:<order>`); credit is no money taken.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Protocol, TypeVar

from pydantic import BaseModel

from models.money import round_money

CREDIT_PREFIX = "exchange:"
# Statuses of money that never passed through the gateway.
OUTSIDE_GATEWAY = frozenset({"paid", "refund_due"})
ZERO = Decimal("0.00")


class Payment(Protocol):
    """What the rules read of a payment record (models.order.PaymentRecord)."""

    @property
    def authorization_id(self) -> str: ...
    @property
    def amount(self) -> Decimal: ...
    @property
    def status(self) -> str: ...
    @property
    def captured(self) -> Decimal: ...
    @property
    def refunded(self) -> Decimal: ...


P = TypeVar("P", bound=Payment)


class Books(BaseModel):
    """An order's money: `kept` is `captured` less `refunded`; `credit` (exchange credit that
    paid for goods) is not money and counts in none of the others."""

    currency: str
    authorized: Decimal
    captured: Decimal
    refunded: Decimal
    kept: Decimal
    credit: Decimal


def is_credit(p: Payment) -> bool:
    """Exchange credit, not money."""
    return p.authorization_id.startswith(CREDIT_PREFIX)


def at_gateway(p: Payment) -> bool:
    """An authorization at the gateway: what it captured can be refunded there."""
    return ":" not in p.authorization_id and p.status not in OUTSIDE_GATEWAY


def refunded_of(p: Payment) -> Decimal:
    """What went back of a payment; money sent back by hand is marked refunded as a whole."""
    if not at_gateway(p) and p.status == "refunded":
        return max(p.refunded, p.captured)
    return p.refunded


def refundable(p: Payment) -> Decimal:
    """What of a payment may still be given back: captured, less what went back already."""
    return max(p.captured - refunded_of(p), ZERO)


def books_of(payments: Iterable[Payment], currency: str) -> Books:
    """Sum an order's payment records into its books."""
    authorized = captured = refunded = credit = ZERO
    for p in payments:
        if is_credit(p):
            credit += p.captured
            continue
        if at_gateway(p) and not (p.status == "voided" and p.captured == 0):
            authorized += p.amount
        captured += p.captured
        refunded += refunded_of(p)
    return Books(
        currency=currency,
        authorized=authorized,
        captured=captured,
        refunded=refunded,
        kept=captured - refunded,
        credit=credit,
    )


def refund_status(captured: Decimal, refunded: Decimal) -> str:
    """A gateway payment's status once `refunded` of its `captured` went back."""
    return "refunded" if refunded >= captured else "partly_refunded"


def refund_cap(payments: Iterable[Payment], held: Decimal) -> Decimal:
    """The most a new return may be worth: the money kept, less what open returns hold.

    Each return's share of the order is worked out on its own and rounded; this keeps their
    sum (and a whole-order amount after parcels went uncharged) within what was paid."""
    # Money already owed back (an overpayment) is no part of what a return may take.
    kept = sum(
        (refundable(p) for p in payments if not is_credit(p) and p.status != "refund_due"), ZERO
    )
    return max(kept - held, ZERO)


def refund_source(payments: Iterable[P], amount: Decimal, held: Mapping[str, Decimal]) -> P | None:
    """The gateway payment a refund of `amount` goes back to: the first with that much left
    once the open returns' holds on it (`held`, by authorization id) are set aside; None when
    no gateway payment has it (the money was paid outside the gateway)."""
    for p in payments:
        if at_gateway(p) and refundable(p) - held.get(p.authorization_id, ZERO) >= amount > 0:
            return p
    return None


class ExchangeSettlement(BaseModel):
    """How the credit of returned lines meets the value of the goods wanted instead."""

    credit: Decimal
    value: Decimal
    # The credit that pays for the new goods, what is left for the customer to pay, and what
    # goes back to the customer because the new goods are worth less.
    credit_used: Decimal
    due: Decimal
    back: Decimal

    @property
    def difference(self) -> Decimal:
        """Value less credit: the customer pays it when positive, gets it back when negative."""
        return self.value - self.credit


def settle_exchange(credit: Decimal, value: Decimal) -> ExchangeSettlement:
    """Credit first; the customer pays what it does not cover and gets back what it exceeds."""
    used = min(credit, value)
    return ExchangeSettlement(
        credit=credit, value=value, credit_used=used, due=value - used, back=credit - used
    )


def sale_value(total: Decimal, paid_by_credit: bool, refunded: Decimal) -> Decimal:
    """What an order brought in: its total less refunds, nothing when exchange credit paid all
    of it. An exchange order's total is already what was left after its credit."""
    if paid_by_credit:
        return ZERO
    return round_money(max(total - refunded, ZERO))
