"""Reading the catalog and the pricing rules that apply to one order."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.pricing import CatalogItem, PricingRules, Promotion
from models.tables import Product, ShippingRate, TaxRate
from models.tables import Promotion as PromotionRow

ANY_COUNTRY = "**"


async def load_catalog(session: AsyncSession, skus: Iterable[str]) -> dict[str, CatalogItem]:
    """The catalog entries of the given SKUs; unknown SKUs are simply absent."""
    rows = await session.execute(select(Product).where(Product.sku.in_(list(set(skus)))))
    return {
        p.sku: CatalogItem(
            sku=p.sku,
            name=p.name,
            variant=p.variant,
            unit_price=p.unit_price,
            currency=p.currency,
            active=p.active,
        )
        for p in rows.scalars()
    }


async def load_rules(session: AsyncSession, country: str, promo_code: str = "") -> PricingRules:
    """Shipping, tax and promotion rules for a ship-to country (falling back to '**')."""
    rates = {
        r.country: r
        for r in (
            await session.execute(
                select(ShippingRate).where(ShippingRate.country.in_([country, ANY_COUNTRY]))
            )
        ).scalars()
    }
    taxes = {
        t.country: t.rate
        for t in (
            await session.execute(
                select(TaxRate).where(TaxRate.country.in_([country, ANY_COUNTRY]))
            )
        ).scalars()
    }
    rate = rates.get(country) or rates.get(ANY_COUNTRY)
    promotion = None
    if promo_code:
        row = await session.get(PromotionRow, promo_code)
        if row is not None and row.active:
            promotion = Promotion(row.code, row.percent_off, row.min_subtotal)
    return PricingRules(
        shipping_fee=rate.fee if rate else Decimal("0"),
        free_shipping_over=rate.free_over if rate else None,
        tax_rate=taxes.get(country, taxes.get(ANY_COUNTRY, Decimal("0"))),
        promotion=promotion,
        express_fee=rate.express_fee if rate else None,
        country=country,
        currency=rate.currency if rate else None,
    )
