"""Returns (§5): what may be sent back, and how much money comes back; no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from models.books import settle_exchange
from models.money import round_money
from models.order import LineInput, OrderLine, PaymentMethod, PricedOrder, ShipmentRecord, Totals
from models.status import EditRefused, OrderStatus


def check_returnable(
    status: OrderStatus,
    bought: Sequence[OrderLine],
    already: Mapping[str, int],
    wanted: Sequence[LineInput],
) -> None:
    """Refuse a return outside the window, of lines not bought, or over what is left."""
    if status in (OrderStatus.COMPLETED, OrderStatus.REFUNDED):
        raise EditRefused("outside_return_window", "the after-sales window of this order is closed")
    if status not in (OrderStatus.DELIVERED, OrderStatus.RETURN_REQUESTED, OrderStatus.RETURNED):
        raise EditRefused(
            "not_delivered", f"only delivered orders can be returned; the order is {status}"
        )
    if not wanted:
        raise EditRefused("nothing_to_return", "name at least one line to return")
    have = {ln.sku: ln.quantity for ln in bought}
    for line in wanted:
        if line.sku not in have:
            raise EditRefused("not_in_order", f"{line.sku} is not part of this order")
        left = have[line.sku] - already.get(line.sku, 0)
        if line.quantity > left:
            raise EditRefused(
                "over_quantity",
                f"{line.sku}: {line.quantity} asked, only {left} left to return",
            )


def refund_amount(
    bought: Sequence[OrderLine], totals: Totals, returned: Sequence[LineInput], everything: bool
) -> Decimal:
    """Money back for the returned lines: their share of discount and tax included; the
    shipping fee only when the whole order comes back."""
    if everything:
        return totals.total
    prices = {ln.sku: ln.unit_price for ln in bought}
    goods = sum((prices[r.sku] * r.quantity for r in returned), Decimal("0"))
    if totals.subtotal == 0:
        return Decimal("0.00")
    share = goods / totals.subtotal
    net_goods = totals.subtotal - totals.discount
    goods_tax = totals.tax * net_goods / (net_goods + totals.shipping) if net_goods else 0
    return round_money((net_goods + goods_tax) * share)


class ExchangeValue(BaseModel):
    """What an exchange is worth against the credit of the lines sent back, as staff see it
    before they decide."""

    lines: list[OrderLine]
    totals: Totals
    credit: Decimal
    value: Decimal
    # value - credit: the customer pays it when positive, gets it back when negative.
    difference: Decimal
    settles_by: str


def value_exchange(
    wanted: PricedOrder, credit: Decimal, method: PaymentMethod, by_gateway: bool
) -> ExchangeValue:
    """The exchange's two values, their difference and how it will be settled: a difference
    due is paid the way the order was (`method`), one owed goes back to the card or wallet
    when the order was paid through the gateway (`by_gateway`), by hand otherwise."""
    s = settle_exchange(credit, wanted.totals.total)
    cur = wanted.totals.currency
    if s.due > 0:
        how = method.value if method != PaymentMethod.EXCHANGE_CREDIT else "invoice"
        settles = f"the customer pays {s.due} {cur} by {how}"
    elif s.back > 0:
        where = f"to the {method.value}" if by_gateway else "by hand"
        settles = f"{s.back} {cur} is refunded {where}"
    else:
        settles = "the credit pays for the goods exactly"
    return ExchangeValue(
        lines=wanted.lines,
        totals=wanted.totals,
        credit=credit,
        value=s.value,
        difference=s.difference,
        settles_by=settles,
    )


class ReturnEvent(BaseModel):
    """One line of a return's history."""

    seq: int
    at: datetime
    kind: str
    actor: str
    status: str
    detail: str = ""


class ReturnView(BaseModel):
    """A return as the API shows it."""

    return_id: str
    order_id: str
    status: str
    status_reason: str = ""
    kind: str
    lines: list[OrderLine]
    reason: str
    evidence: str = ""
    refund_amount: Decimal
    currency: str
    refunded: Decimal = Decimal("0.00")
    condition: str = ""
    shipment: ShipmentRecord | None = None
    exchange_order_id: str = ""
    # Set for exchanges asked for since they are valued.
    exchange: ExchangeValue | None = None
    history: list[ReturnEvent] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
