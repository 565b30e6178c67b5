"""Warehouse allocation, parcel shares and a split order's combined status (§4), no I/O."""

from __future__ import annotations

from decimal import Decimal

import pytest

from models.allocation import WarehouseInfo, allocate, allocate_fixed
from models.order import OrderLine, ShipmentRecord
from models.pricing import parcel_shares
from models.shipments import check_split, combined_status
from models.status import EditRefused, OrderStatus

SHA = WarehouseInfo("WH-SHA", "CN", 10)
RTM = WarehouseInfo("WH-RTM", "NL", 20)
LAX = WarehouseInfo("WH-LAX", "US", 5)
ALL = [SHA, RTM, LAX]


def test_one_warehouse_that_has_everything_wins_nearest_first() -> None:
    free = {"WH-SHA": {"A": 5, "B": 5}, "WH-RTM": {"A": 5, "B": 5}}
    found = allocate({"A": 1, "B": 2}, free, ALL, "NL")
    assert [(p.warehouse_id, p.lines) for p in found.parcels] == [("WH-RTM", {"A": 1, "B": 2})]
    assert "WH-RTM" in found.reasons[0] and "ship-to" in found.reasons[0]
    # Far away from both: priority decides.
    found = allocate({"A": 1}, free, ALL, "DE")
    assert found.parcels[0].warehouse_id == "WH-SHA"


def test_a_warehouse_already_holding_the_order_keeps_it() -> None:
    free = {"WH-SHA": {"A": 5}, "WH-RTM": {"A": 5}}
    found = allocate({"A": 2}, free, ALL, "CN", current=["WH-RTM"])
    assert found.parcels[0].warehouse_id == "WH-RTM"


def test_fewest_parcels_when_no_warehouse_has_everything() -> None:
    # LAX ranks first by priority but the order needs only two parcels, SHA and RTM.
    free = {
        "WH-LAX": {"A": 1},
        "WH-SHA": {"A": 2, "B": 0, "C": 3},
        "WH-RTM": {"B": 4, "C": 1},
    }
    found = allocate({"A": 2, "B": 1, "C": 3}, free, ALL, "CN")
    assert {p.warehouse_id: p.lines for p in found.parcels} == {
        "WH-SHA": {"A": 2, "C": 3},
        "WH-RTM": {"B": 1},
    }
    assert found.complete and "2 parcels" in found.reasons[0]


def test_nearest_first_strategy_fills_line_by_line() -> None:
    free = {"WH-SHA": {"A": 1}, "WH-RTM": {"A": 5}}
    found = allocate({"A": 3}, free, ALL, "CN", strategy="nearest_first")
    assert {p.warehouse_id: p.lines for p in found.parcels} == {
        "WH-SHA": {"A": 1},
        "WH-RTM": {"A": 2},
    }
    # The default prefers the one warehouse that can ship it all.
    assert [p.warehouse_id for p in allocate({"A": 3}, free, ALL, "CN").parcels] == ["WH-RTM"]


def test_without_split_only_a_single_warehouse_will_do() -> None:
    free = {"WH-SHA": {"A": 1}, "WH-RTM": {"A": 1}}
    found = allocate({"A": 2}, free, ALL, "CN", split=False)
    assert found.parcels == [] and found.short == {"A": 1}
    assert allocate({"A": 2}, free, ALL, "CN").complete


def test_short_stock_is_all_or_nothing_unless_partial_is_allowed() -> None:
    free = {"WH-SHA": {"A": 1, "B": 2}}
    found = allocate({"A": 3, "B": 1}, free, ALL, "CN")
    assert found.parcels == [] and found.short == {"A": 2}
    found = allocate({"A": 3, "B": 1}, free, ALL, "CN", partial=True)
    assert [(p.warehouse_id, p.lines) for p in found.parcels] == [("WH-SHA", {"A": 1, "B": 1})]
    assert found.short == {"A": 2} and not found.complete
    assert "restock" in found.reasons[0]


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="strategy"):
        allocate({"A": 1}, {}, ALL, "CN", strategy="cheapest")


def _line(sku: str, qty: int, price: str) -> OrderLine:
    unit = Decimal(price)
    return OrderLine(sku=sku, name=sku, quantity=qty, unit_price=unit, line_total=unit * qty)


def test_parcel_shares_add_up_to_the_total_exactly() -> None:
    lines = [_line("A", 2, "10.00"), _line("B", 1, "30.00")]
    shares = parcel_shares(lines, Decimal("62.15"), [{"A": 2}, {"B": 1}])
    assert shares == [Decimal("24.86"), Decimal("37.29")]
    assert sum(shares) == Decimal("62.15")
    thirds = parcel_shares([_line("A", 3, "1.00")], Decimal("10.00"), [{"A": 1}] * 3)
    assert thirds == [Decimal("3.33"), Decimal("3.33"), Decimal("3.34")]


def _parcel(status: str, left: bool = False, tracking: str = "T") -> ShipmentRecord:
    return ShipmentRecord(
        shipment_id="s", tracking_number=tracking, status=status, left_warehouse=left
    )


@pytest.mark.parametrize(
    ("parcels", "expected"),
    [
        ([_parcel("picking", tracking=""), _parcel("booked")], OrderStatus.PICKING),
        ([_parcel("booked"), _parcel("booked")], OrderStatus.PACKED),
        ([_parcel("picked_up", True), _parcel("booked")], OrderStatus.PARTIALLY_SHIPPED),
        ([_parcel("delivered", True), _parcel("booked")], OrderStatus.PARTIALLY_SHIPPED),
        ([_parcel("in_transit", True), _parcel("cancelled")], OrderStatus.SHIPPED),
        ([_parcel("delivered", True), _parcel("in_transit", True)], OrderStatus.SHIPPED),
        ([_parcel("delivered", True), _parcel("failed")], OrderStatus.DELIVERED),
        ([_parcel("cancelled"), _parcel("cancelled")], None),
    ],
)
def test_combined_status_follows_the_parcels(
    parcels: list[ShipmentRecord], expected: OrderStatus | None
) -> None:
    assert combined_status(parcels) == expected


def test_a_split_by_hand_takes_each_parcel_from_its_own_stock() -> None:
    free = {"WH-SHA": {"A": 3, "B": 1}, "WH-RTM": {"A": 2}}
    found = allocate_fixed([(None, {"A": 2}), (None, {"A": 1, "B": 1})], free, ALL, "CN")
    # The first parcel used SHA's A units, so the second still fits there (1 A left).
    assert [(p.warehouse_id, p.lines) for p in found.parcels] == [
        ("WH-SHA", {"A": 2}),
        ("WH-SHA", {"A": 1, "B": 1}),
    ]
    found = allocate_fixed([("WH-RTM", {"A": 2}), ("WH-RTM", {"B": 1})], free, ALL, "CN")
    assert found.parcels == [] and found.short == {"B": 1}
    found = allocate_fixed([("WH-NOPE", {"A": 1}), (None, {"B": 1})], free, ALL, "CN")
    assert found.parcels == [] and found.short == {"A": 1}


@pytest.mark.parametrize(
    ("parcels", "rule"),
    [
        ([{"A": 2, "B": 1}], "split_needs_two_parcels"),
        ([{"A": 2}, {}], "split_parcel_empty"),
        ([{"A": 1}, {"B": 1}], "split_lines_mismatch"),
        ([{"A": 2}, {"B": 1}, {"C": 1}], "split_lines_mismatch"),
    ],
)
def test_a_split_must_share_out_exactly_the_order(parcels: list[dict[str, int]], rule: str) -> None:
    with pytest.raises(EditRefused) as err:
        check_split({"A": 2, "B": 1}, parcels)
    assert err.value.rule == rule


def test_a_valid_split_passes() -> None:
    check_split({"A": 2, "B": 1}, [{"A": 1}, {"A": 1, "B": 1}])
