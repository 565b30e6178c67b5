"""The combined status of a split order from the state of its parcels (§4); no I/O."""

from __future__ import annotations

from collections.abc import Sequence

from models.order import ShipmentRecord
from models.status import OrderStatus

# Parcels that will never ship: they no longer count towards the order's status.
ENDED_UNSHIPPED = frozenset({"cancelled", "failed"})


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
