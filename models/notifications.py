"""What each customer notification says; the workflow decides when, the outbox sends."""

from __future__ import annotations

from pydantic import BaseModel

from models.order import OrderView

STAFF = "staff"  # the dispatcher sends these to the configured staff address


class Notification(BaseModel):
    """One email, keyed so that writing it twice still sends it once."""

    key: str
    order_id: str
    kind: str
    to: str
    subject: str
    text: str


def _lines(view: OrderView) -> str:
    return "\n".join(f"  {ln.quantity} x {ln.name} ({ln.sku})" for ln in view.lines)


def render(kind: str, view: OrderView, detail: str = "") -> tuple[str, str]:
    """Subject and text of a customer notification of the given kind."""
    t = view.totals
    hello = f"Hello {view.customer.name},\n\n"
    bye = f"\n\nOrder {view.order_id}\n{_lines(view)}\nTotal: {t.total} {t.currency}\n"
    tracking = ", ".join(s.tracking_number for s in view.shipments if s.status != "cancelled")
    texts = {
        "confirmed": (
            f"Your order {view.order_id} is confirmed",
            "thank you for your order. We are preparing it now.",
        ),
        "payment_problem": (
            f"Payment problem with order {view.order_id}",
            f"we could not take the payment for your order: {detail}. "
            "Please send a new payment method so we can go on.",
        ),
        "awaiting_payment": (
            f"Please pay for order {view.order_id}",
            f"your order is reserved for you. Please transfer {t.total} {t.currency} "
            f"with reference {view.order_id}.",
        ),
        "backorder_delay": (
            f"Order {view.order_id} is delayed",
            f"some items are out of stock right now: {detail}. "
            "We will send your order as soon as they are back.",
        ),
        "shipped": (
            f"Order {view.order_id} has shipped",
            f"your parcel is on its way. Tracking number: {tracking}.",
        ),
        "parcel_shipped": (
            f"Part of order {view.order_id} has shipped",
            f"one parcel of your order is on its way: {detail}. "
            "The rest follows in its own parcel.",
        ),
        "parcels_cancelled": (
            f"Part of order {view.order_id} is cancelled",
            f"{detail}. You are only charged for what ships.",
        ),
        "delivered": (
            f"Order {view.order_id} was delivered",
            "your parcel was delivered. We hope you enjoy it.",
        ),
        "cancelled": (
            f"Order {view.order_id} is cancelled",
            f"your order was cancelled: {detail}. Nothing will be charged.",
        ),
        "refunded": (
            f"Refund for order {view.order_id}",
            f"we refunded {detail} to your original payment method.",
        ),
        "delivery_issue": (
            f"About the delivery of order {view.order_id}",
            f"there is a problem with the delivery of your parcel: {detail}. "
            "We are looking into it and will be in touch.",
        ),
    }
    subject, body = texts[kind]
    return subject, hello + body + bye


def render_alert(kind: str, view: OrderView, message: str) -> tuple[str, str]:
    """Subject and text of a staff alert."""
    return (
        f"[orderflow] {kind} on {view.order_id}",
        f"{message}\n\nOrder {view.order_id} is {view.status.value}.\n"
        f"Customer {view.customer.name} ({view.customer.id}), {view.customer.email}\n",
    )
