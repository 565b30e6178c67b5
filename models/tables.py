"""PostgreSQL tables: catalog, stock, rules, the order read model, payments and shipments."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Money = Numeric(14, 2)


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention, so migrations name things alike."""

    metadata = MetaData(naming_convention=NAMING)


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class Warehouse(Base):
    __tablename__ = "warehouses"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    priority: Mapped[int] = mapped_column(Integer, default=100)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        Index(
            "ix_products_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
    )
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    variant: Mapped[str] = mapped_column(String(200), default="")
    category: Mapped[str] = mapped_column(String(100), default="")
    unit_price: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    active: Mapped[bool] = mapped_column(default=True)
    # Units across all warehouses below which staff are alerted and replenishment plans.
    safety_stock: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Stock(Base):
    """On-hand and reserved units of one SKU in one warehouse; available = on_hand - reserved."""

    __tablename__ = "stock"
    __table_args__ = (
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("reserved <= on_hand", name="no_oversell"),
    )
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"), primary_key=True)
    warehouse_id: Mapped[str] = mapped_column(ForeignKey("warehouses.id"), primary_key=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)


class Reservation(Base):
    """Units held for one order; `shipped` once they left the warehouse.

    `batch` numbers the shipments of an order: a reshipment holds its own units.
    """

    __tablename__ = "reservations"
    order_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    batch: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    warehouse_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="held")
    updated_at: Mapped[datetime] = _now()


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = _now()


class ShippingRate(Base):
    """Flat shipping fee per country ('**' for the rest), free above a goods amount; express
    costs its own fee where offered."""

    __tablename__ = "shipping_rates"
    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    fee: Mapped[Decimal] = mapped_column(Money)
    free_over: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    # The currency of the fees and the threshold; pricing refuses goods in another one.
    currency: Mapped[str] = mapped_column(String(3), default="USD", server_default="USD")
    # The express delivery fee, never waived; NULL where express is not offered.
    express_fee: Mapped[Decimal | None] = mapped_column(Money, nullable=True)


class TaxRate(Base):
    __tablename__ = "tax_rates"
    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    rate: Mapped[Decimal] = mapped_column(Numeric(6, 4))


class Promotion(Base):
    __tablename__ = "promotions"
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    percent_off: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    min_subtotal: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    active: Mapped[bool] = mapped_column(default=True)


class OrderIntake(Base):
    """One row per accepted create request, keyed by Idempotency-Key or channel order id.

    Written before the workflow starts, so a retry finds the same order number and can
    start the same workflow again if the first attempt died in between.
    """

    __tablename__ = "order_intake"
    __table_args__ = (Index("ix_order_intake_customer", "customer_id", "created_at"),)
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    # Placement attempts per customer, counted by the velocity rule before any workflow ran.
    customer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    workflow_input: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _now()


class Order(Base):
    """The read model: one row per order, the searchable columns plus the last full view."""

    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_customer_created", "customer_id", "created_at"),
        Index("ix_orders_status_created", "status", "created_at"),
        Index("ix_orders_created", "created_at", "order_id"),
        Index("ix_orders_total", "total", "order_id"),
        Index("ix_orders_customer_name", "customer_name"),
        # Trigram indexes: partial matches on names, emails, phones and numbers stay fast.
        *(
            Index(
                f"ix_orders_{col}_trgm",
                col,
                postgresql_using="gin",
                postgresql_ops={col: "gin_trgm_ops"},
            )
            for col in (
                "order_id",
                "customer_name",
                "customer_email",
                "customer_phone",
                "channel_order_id",
            )
        ),
    )
    order_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    customer_name: Mapped[str] = mapped_column(String(200))
    customer_email: Mapped[str] = mapped_column(String(200))
    customer_phone: Mapped[str] = mapped_column(String(64), default="", server_default="")
    channel: Mapped[str] = mapped_column(String(20))
    channel_order_id: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(24))
    total: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    view: Mapped[dict[str, Any]] = mapped_column(JSONB)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    # When the workflow task that wrote the row started (µs): see orders_repo.save_view.
    version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OrderCustomerName(Base):
    """Every customer name some order carries, once (kept by triggers on `orders`).

    A partial name matches here first: a customer's orders lie all over `orders`, so a
    trigram scan there reads most of the index for a name shared by many orders, while the
    distinct names are few and their index small."""

    __tablename__ = "order_customer_names"
    __table_args__ = (
        Index(
            "ix_order_customer_names_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
    )
    name: Mapped[str] = mapped_column(String(200), primary_key=True)


class OrderLineRow(Base):
    __tablename__ = "order_lines"
    # The order's placing time, copied here: the newest orders of a SKU come straight off
    # this index, without sorting every order that ever had it.
    __table_args__ = (Index("ix_order_lines_sku_created", "sku", "created_at", "order_id"),)
    order_id: Mapped[str] = mapped_column(
        ForeignKey("orders.order_id", ondelete="CASCADE"), primary_key=True
    )
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The price the order was charged, copied from its view so reports sum plain columns.
    unit_price: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    line_total: Mapped[Decimal | None] = mapped_column(Money, nullable=True)


class OrderEvent(Base):
    """The order's history; (order_id, seq) makes a retried write land once."""

    __tablename__ = "order_events"
    order_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(24))
    detail: Mapped[str] = mapped_column(Text, default="")


class Payment(Base):
    """Our record of each authorization and what was captured or voided."""

    __tablename__ = "payments"
    authorization_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(24))
    captured: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    updated_at: Mapped[datetime] = _now()


class Shipment(Base):
    __tablename__ = "shipments"
    shipment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    tracking_number: Mapped[str] = mapped_column(String(64))
    warehouse_id: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[str] = mapped_column(String(24))
    updated_at: Mapped[datetime] = _now()


class Backorder(Base):
    """An order waiting for stock; a restock serves them first come, first served."""

    __tablename__ = "backorders"
    __table_args__ = (Index("ix_backorders_waiting", "status", "created_at"),)
    order_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    wanted: Mapped[dict[str, int]] = mapped_column(JSONB)
    ship_country: Mapped[str] = mapped_column(String(2), default="")
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    batch: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    split: Mapped[bool] = mapped_column(default=False, server_default="false")
    created_at: Mapped[datetime] = _now()


class Alert(Base):
    """Something staff must look at: a review, a carrier exception, a breached SLA."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_open", "resolved_at", "created_at"),)
    order_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class OutboxMessage(Base):
    """An email to send; the key makes a repeated write land once, so it is sent once."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "status", "created_at"),)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = _now()
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Return(Base):
    """The read model of a return; `restocked` makes putting its goods back happen once."""

    __tablename__ = "returns"
    return_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(24))
    kind: Mapped[str] = mapped_column(String(16))
    view: Mapped[dict[str, Any]] = mapped_column(JSONB)
    restocked: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CustomerNote(Base):
    """A staff note about a customer (optionally about one order): part of their history."""

    __tablename__ = "customer_notes"
    __table_args__ = (Index("ix_customer_notes_customer", "customer_id", "created_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    author: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()


class OrderFeedback(Base):
    """A customer's rating of a delivered order; one per order, the latest wins."""

    __tablename__ = "order_feedback"
    __table_args__ = (
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
        Index("ix_order_feedback_customer", "customer_id", "created_at"),
    )
    order_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = _now()


class OrderLink(Base):
    """A link between two orders kept outside either workflow, so closed orders show it too."""

    __tablename__ = "order_links"
    order_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    other_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[datetime] = _now()
