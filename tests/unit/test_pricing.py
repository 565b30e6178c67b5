"""Pricing rules: lines, discount, shipping and tax, with no I/O."""

from __future__ import annotations

from decimal import Decimal

import pytest

from models.money import CurrencyMismatch, round_money, same_currency
from models.order import DeliveryOption, LineInput
from models.pricing import (
    CatalogItem,
    DeliveryNotOffered,
    PricingError,
    PricingRules,
    Promotion,
    price_order,
)

D = Decimal
CATALOG = {
    "A": CatalogItem("A", "Tea", "100 g", D("18.50"), "USD"),
    "B": CatalogItem("B", "Cup", "", D("3.33"), "USD"),
    "OLD": CatalogItem("OLD", "Retired", "", D("1.00"), "USD", active=False),
    "EUR": CatalogItem("EUR", "Import", "", D("5.00"), "EUR"),
}
RULES = PricingRules(shipping_fee=D("5.00"), free_shipping_over=D("99.00"), tax_rate=D("0.13"))
EXPRESS_RULES = PricingRules(
    shipping_fee=D("5.00"),
    free_shipping_over=D("99.00"),
    tax_rate=D("0.13"),
    express_fee=D("15.00"),
    country="CN",
)
EXPRESS = DeliveryOption.EXPRESS


def lines(*pairs: tuple[str, int]) -> list[LineInput]:
    return [LineInput(sku=s, quantity=q) for s, q in pairs]


def test_totals_add_up() -> None:
    priced = price_order(lines(("A", 2), ("B", 3)), CATALOG, RULES)
    t = priced.totals
    assert [ln.line_total for ln in priced.lines] == [D("37.00"), D("9.99")]
    assert t.subtotal == D("46.99")
    assert t.shipping == D("5.00")
    assert t.tax == round_money(D("51.99") * D("0.13")) == D("6.76")
    assert t.total == t.subtotal - t.discount + t.shipping + t.tax == D("58.75")


def test_free_shipping_over_threshold() -> None:
    t = price_order(lines(("A", 6)), CATALOG, RULES).totals
    assert t.subtotal == D("111.00") and t.shipping == D("0")


def test_same_sku_twice_is_one_line() -> None:
    priced = price_order(lines(("A", 1), ("B", 1), ("A", 2)), CATALOG, RULES)
    assert [(ln.sku, ln.quantity) for ln in priced.lines] == [("A", 3), ("B", 1)]


def test_promotion_applies_from_its_minimum() -> None:
    rules = PricingRules(D("5"), None, D("0"), Promotion("TEN", D("10"), D("40")))
    below = price_order(lines(("A", 2)), CATALOG, rules)
    assert below.totals.discount == D("0") and below.promotion == ""
    above = price_order(lines(("A", 3)), CATALOG, rules)
    assert above.totals.discount == D("5.55") and above.promotion == "TEN"
    assert above.totals.total == D("55.50") - D("5.55") + D("5")


def test_unknown_and_inactive_skus_are_named() -> None:
    with pytest.raises(PricingError) as err:
        price_order(lines(("A", 1), ("NOPE", 1), ("OLD", 1)), CATALOG, RULES)
    assert {d["sku"] for d in err.value.details} == {"NOPE", "OLD"}


def test_no_lines_is_an_error() -> None:
    with pytest.raises(PricingError):
        price_order([], CATALOG, RULES)


def test_currencies_never_mix() -> None:
    # A refusal the caller sees (422), not a crash.
    with pytest.raises(PricingError, match="one currency"):
        price_order(lines(("A", 1), ("EUR", 1)), CATALOG, RULES)
    eur_rates = PricingRules(
        shipping_fee=D("5.00"), free_shipping_over=None, tax_rate=D("0"), currency="EUR"
    )
    with pytest.raises(PricingError, match="one currency"):
        price_order(lines(("A", 1)), CATALOG, eur_rates)
    assert price_order(lines(("EUR", 1)), CATALOG, eur_rates).totals.currency == "EUR"


def test_same_currency_names_what_differs() -> None:
    with pytest.raises(CurrencyMismatch, match="EUR"):
        same_currency(["USD", "EUR"])


def test_rounding_is_half_up() -> None:
    assert round_money(D("0.005")) == D("0.01")
    assert round_money(D("2.675")) == D("2.68")
    assert round_money(D("-0.005")) == D("-0.01")


def test_express_charges_the_express_fee() -> None:
    t = price_order(lines(("A", 2), ("B", 3)), CATALOG, EXPRESS_RULES, EXPRESS).totals
    assert t.subtotal == D("46.99") and t.shipping == D("15.00")
    # Tax applies to the express fee as to any shipping.
    assert t.tax == round_money(D("61.99") * D("0.13")) == D("8.06")
    assert t.total == D("46.99") + D("15.00") + D("8.06")


def test_express_is_never_free_above_the_threshold() -> None:
    t = price_order(lines(("A", 6)), CATALOG, EXPRESS_RULES, EXPRESS).totals
    assert t.subtotal == D("111.00") and t.shipping == D("15.00")


def test_express_fee_is_rounded_to_the_cent() -> None:
    rules = PricingRules(D("5"), None, D("0"), express_fee=D("9.995"))
    assert price_order(lines(("B", 1)), CATALOG, rules, EXPRESS).totals.shipping == D("10.00")


def test_express_where_not_offered_is_refused() -> None:
    rules = PricingRules(D("15.00"), None, D("0"), country="US")
    with pytest.raises(DeliveryNotOffered) as err:
        price_order(lines(("A", 1)), CATALOG, rules, EXPRESS)
    assert err.value.delivery == EXPRESS and err.value.country == "US"
    assert str(err.value) == "express delivery is not offered to US"
    # The same order at standard delivery is fine there.
    assert price_order(lines(("A", 1)), CATALOG, rules).totals.shipping == D("15.00")


def test_standard_is_unchanged_where_express_is_offered() -> None:
    for order in (lines(("A", 2), ("B", 3)), lines(("A", 6))):
        standard = price_order(order, CATALOG, EXPRESS_RULES, DeliveryOption.STANDARD)
        assert standard == price_order(order, CATALOG, RULES)
    assert price_order(lines(("A", 1)), CATALOG, EXPRESS_RULES).totals.shipping == D("5.00")
