"""An order's payment and fulfilment state in one word each, as order lists show them; no I/O."""

from __future__ import annotations

from typing import Any

from models.status import OrderStatus

S = OrderStatus


def payment_state(view: dict[str, Any]) -> str:
    """Where the order's money stands, from its recorded view."""
    payments = view.get("payments", [])
    statuses = {p.get("status") for p in payments}
    if "refund_due" in statuses:
        return "refund due"
    if payments and statuses <= {"refunded", "voided"} and "refunded" in statuses:
        return "refunded"
    if statuses & {"partly_refunded"} or any(
        str(p.get("refunded", "0")) not in ("0", "0.00") for p in payments
    ):
        return "partly refunded"
    if statuses & {"captured", "paid"}:
        return "paid"
    if "partially_captured" in statuses:
        return "partly paid"
    if "authorized" in statuses:
        return "authorized"
    return "voided" if "voided" in statuses else "unpaid"


def fulfilment_state(view: dict[str, Any]) -> str:
    """Where the order's goods stand, from its recorded view."""
    status = view.get("status")
    if status in (S.DELIVERED, S.COMPLETED, S.RETURN_REQUESTED, S.RETURNED):
        return "delivered"
    if status in (S.SHIPPED, S.PARTIALLY_SHIPPED):
        return "partly shipped" if status == S.PARTIALLY_SHIPPED else "shipped"
    if status in (S.PICKING, S.PACKED):
        return "in the warehouse"
    if status in (S.CANCELLED, S.FAILED, S.REFUNDED):
        return "not shipped" if not view.get("shipments") else "stopped"
    return "unfulfilled"
