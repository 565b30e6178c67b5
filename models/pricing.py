"""Pricing: lines, discount, shipping fee and tax from the catalog and rules, never the client."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from models.money import CurrencyMismatch, round_money, same_currency
from models.order import DeliveryOption, LineInput, OrderLine, PricedOrder, Totals

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class CatalogItem:
    """A sellable SKU as the catalog lists it."""

    sku: str
    name: str
    variant: str
    unit_price: Decimal
    currency: str
    active: bool = True


@dataclass(frozen=True)
class Promotion:
    """A percentage off the subtotal, from a minimum subtotal on."""

    code: str
    percent_off: Decimal
    min_subtotal: Decimal = ZERO


@dataclass(frozen=True)
class PricingRules:
    """The rules for one ship-to country."""

    shipping_fee: Decimal
    free_shipping_over: Decimal | None
    tax_rate: Decimal
    promotion: Promotion | None = None
    # None where express delivery is not offered.
    express_fee: Decimal | None = None
    # The ship-to country the rules were read for, to name it in refusals.
    country: str = ""
    # The currency of the fees; None when no rate applies (nothing is charged).
    currency: str | None = None


class PricingError(ValueError):
    """The order cannot be priced; `details` says which lines are wrong."""

    def __init__(self, message: str, details: list[dict[str, object]]) -> None:
        super().__init__(message)
        self.details = details


class DeliveryNotOffered(ValueError):
    """The ship-to country has no such delivery option."""

    def __init__(self, delivery: DeliveryOption, country: str = "") -> None:
        where = f" to {country}" if country else " there"
        super().__init__(f"{delivery.value} delivery is not offered{where}")
        self.delivery = delivery
        self.country = country


def shipping_fee(goods: Decimal, rules: PricingRules, delivery: DeliveryOption) -> Decimal:
    """The fee of the chosen delivery; the free-shipping threshold only waives standard."""
    if delivery == DeliveryOption.EXPRESS:
        if rules.express_fee is None:
            raise DeliveryNotOffered(delivery, rules.country)
        return round_money(rules.express_fee)
    free = rules.free_shipping_over is not None and goods >= rules.free_shipping_over
    return ZERO if free else round_money(rules.shipping_fee)


def merge_lines(lines: Sequence[LineInput]) -> list[LineInput]:
    """One line per SKU, in first-seen order, quantities added up."""
    merged: dict[str, int] = {}
    for line in lines:
        merged[line.sku] = merged.get(line.sku, 0) + line.quantity
    return [LineInput(sku=sku, quantity=qty) for sku, qty in merged.items()]


def price_order(
    lines: Sequence[LineInput],
    catalog: Mapping[str, CatalogItem],
    rules: PricingRules,
    delivery: DeliveryOption = DeliveryOption.STANDARD,
) -> PricedOrder:
    """Price an order; unknown or inactive SKUs raise PricingError naming each of them, a
    delivery option the country lacks raises DeliveryNotOffered."""
    if not lines:
        raise PricingError("an order needs at least one line", [])
    wanted = merge_lines(lines)
    bad: list[dict[str, object]] = [
        {"sku": line.sku, "problem": "unknown SKU"}
        for line in wanted
        if line.sku not in catalog or not catalog[line.sku].active
    ]
    if bad:
        raise PricingError("some lines name SKUs that are not for sale", bad)

    priced = [
        OrderLine(
            sku=line.sku,
            name=catalog[line.sku].name,
            variant=catalog[line.sku].variant,
            quantity=line.quantity,
            unit_price=catalog[line.sku].unit_price,
            line_total=round_money(catalog[line.sku].unit_price * line.quantity),
        )
        for line in wanted
    ]
    try:
        currency = same_currency(catalog[line.sku].currency for line in wanted)
        if rules.currency is not None:
            same_currency([currency, rules.currency])
    except CurrencyMismatch as exc:
        raise PricingError(f"cannot price in one currency: {exc}", []) from None
    subtotal = sum((line.line_total for line in priced), ZERO)

    promo = rules.promotion
    discount = ZERO
    if promo is not None and subtotal >= promo.min_subtotal:
        discount = round_money(subtotal * promo.percent_off / 100)
    goods = subtotal - discount

    shipping = shipping_fee(goods, rules, delivery)
    # Prices are net; tax applies to discounted goods and shipping alike.
    tax = round_money((goods + shipping) * rules.tax_rate)
    total = goods + shipping + tax
    return PricedOrder(
        lines=priced,
        totals=Totals(
            currency=currency,
            subtotal=subtotal,
            discount=discount,
            shipping=shipping,
            tax=tax,
            total=total,
        ),
        promotion=promo.code if promo is not None and discount > 0 else "",
    )


def parcel_shares(
    lines: Sequence[OrderLine], total: Decimal, parcels: Sequence[Mapping[str, int]]
) -> list[Decimal]:
    """What each parcel of a split order is worth of `total` (discount, shipping, tax in).

    Each parcel gets the order total in proportion to the value of the goods it carries; the
    last takes what rounding left, so the shares always add up to the total exactly.
    """
    unit = {ln.sku: ln.line_total / ln.quantity for ln in lines if ln.quantity}
    goods = sum((ln.line_total for ln in lines), Decimal("0"))
    values = [sum((unit[sku] * q for sku, q in p.items()), Decimal("0")) for p in parcels]
    shares: list[Decimal] = []
    for value in values[:-1]:
        shares.append(round_money(total * value / goods) if goods else Decimal("0.00"))
    shares.append(total - sum(shares, Decimal("0")))
    return shares
