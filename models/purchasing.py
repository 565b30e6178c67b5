"""Purchase orders (§7): what was ordered from a supplier, what came, and the rules; no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from models.money import round_money
from models.status import EditRefused


class PoStatus(StrEnum):
    SENT = "SENT"
    CONFIRMED = "CONFIRMED"
    PARTLY_RECEIVED = "PARTLY_RECEIVED"
    RECEIVED = "RECEIVED"
    CANCELLED = "CANCELLED"
    # Closed with part of it received: the rest will not come.
    CLOSED = "CLOSED"


OPEN_PO = frozenset({PoStatus.SENT, PoStatus.CONFIRMED, PoStatus.PARTLY_RECEIVED})


class PoLine(BaseModel):
    sku: str
    name: str = ""
    ordered: int
    received: int = 0
    unit_cost: Decimal

    @property
    def outstanding(self) -> int:
        return self.ordered - self.received


class PoEvent(BaseModel):
    at: datetime
    kind: str
    actor: str
    detail: str = ""


class SupplierRef(BaseModel):
    id: str
    name: str
    email: str
    lead_time_days: int


class Receipt(BaseModel):
    receipt_id: str
    at: datetime
    lines: dict[str, int]
    backorders_served: list[str] = Field(default_factory=list)


class PurchaseOrderView(BaseModel):
    po_id: str
    supplier: SupplierRef
    warehouse_id: str
    status: PoStatus
    currency: str
    lines: list[PoLine]
    total_cost: Decimal
    supplier_reference: str = ""
    expected_at: datetime | None = None
    receipts: list[Receipt] = Field(default_factory=list)
    history: list[PoEvent] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


def total_cost(lines: list[PoLine]) -> Decimal:
    return round_money(sum((ln.unit_cost * ln.ordered for ln in lines), Decimal("0")))


def check_open(view: PurchaseOrderView, action: str) -> None:
    """Refuse anything but reading on a purchase order that has ended."""
    if view.status not in OPEN_PO:
        raise EditRefused("purchase_order_closed", f"cannot {action}: the order is {view.status}")


def check_confirm(view: PurchaseOrderView) -> None:
    check_open(view, "confirm")
    if view.status != PoStatus.SENT:
        raise EditRefused("already_confirmed", f"the order is already {view.status}")


def check_receipt(view: PurchaseOrderView, lines: Mapping[str, int]) -> None:
    """A receipt names SKUs of this order, each at most what is still to come."""
    check_open(view, "receive goods")
    if not lines or any(q <= 0 for q in lines.values()):
        raise EditRefused("nothing_received", "a receipt needs at least one SKU with units > 0")
    have = {ln.sku: ln for ln in view.lines}
    for sku, qty in sorted(lines.items()):
        if sku not in have:
            raise EditRefused("not_on_purchase_order", f"{sku} is not on {view.po_id}")
        if qty > have[sku].outstanding:
            raise EditRefused(
                "over_receipt",
                f"{sku}: {qty} received, only {have[sku].outstanding} still to come",
            )


def apply_receipt(view: PurchaseOrderView, lines: Mapping[str, int]) -> None:
    """Count the units in and move the status on."""
    for ln in view.lines:
        ln.received += lines.get(ln.sku, 0)
    done = all(ln.outstanding == 0 for ln in view.lines)
    view.status = PoStatus.RECEIVED if done else PoStatus.PARTLY_RECEIVED


def status_after_cancel(view: PurchaseOrderView) -> PoStatus:
    """Nothing came: cancelled; part came: closed short."""
    return PoStatus.CLOSED if any(ln.received for ln in view.lines) else PoStatus.CANCELLED
