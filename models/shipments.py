"""The combined status of a split order from the state of its parcels (§4); no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from models.order import ShipmentRecord
from models.status import EditRefused, OrderStatus

# Parcels staff settled after a carrier exception: refunded, or replaced by a new parcel.
SETTLED = frozenset({"refunded", "reshipped"})
# Parcels that no longer count towards the order's status: they will never ship, or were settled.
ENDED_UNSHIPPED = frozenset({"cancelled", "failed"}) | SETTLED


def live_parcels(parcels: Sequence[ShipmentRecord]) -> list[ShipmentRecord]:
    """Parcels that shipped or still may."""
    return [p for p in parcels if p.status not in ENDED_UNSHIPPED]


def combined_status(parcels: Sequence[ShipmentRecord]) -> OrderStatus | None:
    """PICKING, PACKED, PARTIALLY_SHIPPED, SHIPPED or DELIVERED; None if no parcel is left."""
    live = live_parcels(parcels)
    if not live:
        return None
    if all(p.status == "delivered" for p in live):
        return OrderStatus.DELIVERED
    left = sum(1 for p in live if p.left_warehouse)
    if left == len(live):
        return OrderStatus.SHIPPED
    if left:
        return OrderStatus.PARTIALLY_SHIPPED
    if all(p.tracking_number for p in live):
        return OrderStatus.PACKED
    return OrderStatus.PICKING


def check_split(order: Mapping[str, int], parcels: Sequence[Mapping[str, int]]) -> None:
    """A split by hand must share out exactly the order's units, in two parcels or more."""
    if len(parcels) < 2:
        raise EditRefused("split_needs_two_parcels", "a split needs at least two parcels")
    if any(not p or any(q <= 0 for q in p.values()) for p in parcels):
        raise EditRefused("split_parcel_empty", "every parcel needs at least one unit")
    total: dict[str, int] = {}
    for p in parcels:
        for sku, q in p.items():
            total[sku] = total.get(sku, 0) + q
    if total != dict(order):
        diff = sorted(
            f"{sku}: order {order.get(sku, 0)}, parcels {total.get(sku, 0)}"
            for sku in set(order) | set(total)
            if order.get(sku, 0) != total.get(sku, 0)
        )
        raise EditRefused(
            "split_lines_mismatch",
            "the parcels must hold exactly the order's units; " + "; ".join(diff),
        )
