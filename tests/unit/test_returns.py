"""Return rules and refund amounts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from models.order import LineInput, OrderLine, Totals
from models.returns import check_returnable, refund_amount
from models.status import EditRefused, OrderStatus

D = Decimal
BOUGHT = [
    OrderLine(sku="A", name="a", quantity=2, unit_price=D("10.00"), line_total=D("20.00")),
    OrderLine(sku="B", name="b", quantity=1, unit_price=D("30.00"), line_total=D("30.00")),
]
# subtotal 50, 10 % off = 45, shipping 5, tax 10 % of 50 = 5, total 55
TOTALS = Totals(
    currency="USD",
    subtotal=D("50.00"),
    discount=D("5.00"),
    shipping=D("5.00"),
    tax=D("5.00"),
    total=D("55.00"),
)


def ret(*pairs: tuple[str, int]) -> list[LineInput]:
    return [LineInput(sku=s, quantity=q) for s, q in pairs]


def test_delivered_lines_may_come_back() -> None:
    check_returnable(OrderStatus.DELIVERED, BOUGHT, {}, ret(("A", 2), ("B", 1)))
    check_returnable(OrderStatus.RETURN_REQUESTED, BOUGHT, {"A": 1}, ret(("A", 1)))
    check_returnable(OrderStatus.RETURNED, BOUGHT, {"A": 1}, ret(("B", 1)))


@pytest.mark.parametrize(
    ("status", "already", "wanted", "rule"),
    [
        (OrderStatus.COMPLETED, {}, ret(("A", 1)), "outside_return_window"),
        (OrderStatus.SHIPPED, {}, ret(("A", 1)), "not_delivered"),
        (OrderStatus.CONFIRMED, {}, ret(("A", 1)), "not_delivered"),
        (OrderStatus.DELIVERED, {}, ret(("Z", 1)), "not_in_order"),
        (OrderStatus.DELIVERED, {}, ret(("A", 3)), "over_quantity"),
        (OrderStatus.DELIVERED, {"A": 2}, ret(("A", 1)), "over_quantity"),
        (OrderStatus.DELIVERED, {}, [], "nothing_to_return"),
    ],
)
def test_refused_returns_name_their_rule(status, already, wanted, rule) -> None:
    with pytest.raises(EditRefused) as err:
        check_returnable(status, BOUGHT, already, wanted)
    assert err.value.rule == rule


def test_whole_order_refunds_everything_paid() -> None:
    assert refund_amount(BOUGHT, TOTALS, ret(("A", 2), ("B", 1)), everything=True) == D("55.00")


def test_part_refunds_its_share_of_discount_and_tax_not_shipping() -> None:
    # B is 30/50 of the goods: 60 % of (45 net + 4.50 goods tax) = 29.70
    assert refund_amount(BOUGHT, TOTALS, ret(("B", 1)), everything=False) == D("29.70")
    one_a = refund_amount(BOUGHT, TOTALS, ret(("A", 1)), everything=False)
    assert one_a == D("9.90")
    assert one_a * 2 + D("29.70") + D("5.00") + D("0.50") == TOTALS.total
