"""After-sales money rules: books, where a refund goes back to, how an exchange settles."""

from __future__ import annotations

from decimal import Decimal

from models.books import (
    books_of,
    refund_cap,
    refund_source,
    refund_status,
    sale_value,
    settle_exchange,
)
from models.order import PaymentMethod, PaymentRecord, PricedOrder, Totals
from models.returns import value_exchange

D = Decimal


def usd_totals(total: Decimal) -> Totals:
    zero = D("0")
    return Totals(
        currency="USD", subtotal=total, discount=zero, shipping=zero, tax=zero, total=total
    )


def _card(
    captured: str, refunded: str = "0", status: str = "captured", amount: str = ""
) -> PaymentRecord:
    return PaymentRecord(
        authorization_id=f"auth_{captured}",
        amount=D(amount or captured),
        currency="USD",
        status=status,
        captured=D(captured),
        refunded=D(refunded),
    )


def test_books_keep_what_was_captured_less_what_went_back() -> None:
    payments = [
        _card("73.45", "45.20", "partly_refunded"),
        PaymentRecord(
            authorization_id="auth_gone", amount=D("10"), currency="USD", status="voided"
        ),
    ]
    books = books_of(payments, "USD")
    assert (books.authorized, books.captured, books.refunded, books.kept, books.credit) == (
        D("73.45"),
        D("73.45"),
        D("45.20"),
        D("28.25"),
        D("0"),
    )


def test_exchange_credit_is_no_money() -> None:
    credit = PaymentRecord(
        authorization_id="exchange:SO-1",
        amount=D("24.86"),
        currency="USD",
        status="paid",
        captured=D("24.86"),
    )
    books = books_of([credit, _card("193.80")], "USD")
    assert books.credit == D("24.86") and books.captured == books.kept == D("193.80")


def test_a_partly_refunded_payment_still_takes_the_next_refund() -> None:
    first = _card("73.45", "22.60", "partly_refunded")
    assert refund_source([first], D("22.60"), {}) is first
    # Another open return already holds most of what is left.
    assert refund_source([first], D("22.60"), {first.authorization_id: D("45.00")}) is None
    transfer = PaymentRecord(
        authorization_id="bank_transfer:T-1",
        amount=D("50"),
        currency="USD",
        status="paid",
        captured=D("50"),
    )
    assert refund_source([transfer], D("10"), {}) is None


def test_refunds_never_exceed_what_was_kept() -> None:
    paid = [_card("10.00", "9.98", "partly_refunded")]
    assert refund_cap(paid, D("0")) == D("0.02")
    assert refund_cap(paid, D("0.05")) == 0
    assert refund_status(D("10.00"), D("9.98")) == "partly_refunded"
    assert refund_status(D("10.00"), D("10.00")) == "refunded"


def test_an_exchange_settles_credit_first() -> None:
    more = settle_exchange(D("24.86"), D("218.66"))
    assert (more.credit_used, more.due, more.back, more.difference) == (
        D("24.86"),
        D("193.80"),
        D("0"),
        D("193.80"),
    )
    less = settle_exchange(D("72.89"), D("30.51"))
    assert (less.credit_used, less.due, less.back, less.difference) == (
        D("30.51"),
        D("0"),
        D("42.38"),
        D("-42.38"),
    )


def test_staff_see_how_an_exchange_will_be_settled() -> None:
    wanted = PricedOrder(lines=[], totals=usd_totals(D("218.66")))
    card = value_exchange(wanted, D("24.86"), PaymentMethod.CARD, by_gateway=True)
    assert card.difference == D("193.80") and "193.80 USD by card" in card.settles_by
    cheap = PricedOrder(lines=[], totals=usd_totals(D("10.00")))
    by_hand = value_exchange(cheap, D("24.86"), PaymentMethod.BANK_TRANSFER, by_gateway=False)
    assert by_hand.difference == D("-14.86") and "by hand" in by_hand.settles_by
    again = value_exchange(wanted, D("24.86"), PaymentMethod.EXCHANGE_CREDIT, by_gateway=False)
    assert "by invoice" in again.settles_by


def test_sales_count_money_kept_and_never_credit() -> None:
    assert sale_value(D("73.45"), paid_by_credit=False, refunded=D("22.60")) == D("50.85")
    assert sale_value(D("30.51"), paid_by_credit=True, refunded=D("0")) == 0
    assert sale_value(D("10.00"), paid_by_credit=False, refunded=D("12.00")) == 0


def test_money_sent_back_by_hand_leaves_the_books() -> None:
    overpaid = PaymentRecord(
        authorization_id="bank_transfer:T-9",
        amount=D("30"),
        currency="USD",
        status="refunded",
        captured=D("30"),
    )
    books = books_of([_card("73.45"), overpaid], "USD")
    assert books.captured == D("103.45") and books.refunded == D("30") and books.kept == D("73.45")
    # Never a gateway refund on money that did not come through the gateway.
    assert refund_source([overpaid], D("1"), {}) is None
