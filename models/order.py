"""The order's language: customer, address, lines, totals, payments, shipments, history."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    computed_field,
    model_validator,
)

from models.books import Books, books_of
from models.status import OrderStatus

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
OptionalText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=200)]
Sku = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
# As long as the columns that keep them (customers, orders, order_intake, api_keys).
CustomerId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)]
# Strict: JSON gives a count as a number; "2" or true for one is a client's bug, not a count.
Quantity = Annotated[int, Field(gt=0, le=10_000, strict=True)]


class Channel(StrEnum):
    """Where an order came from (§1)."""

    WEB = "web"
    MOBILE = "mobile"
    MARKETPLACE = "marketplace"
    PHONE = "phone"
    IMPORT = "import"


class PaymentMethod(StrEnum):
    """How the customer pays."""

    CARD = "card"
    WALLET = "wallet"
    BANK_TRANSFER = "bank_transfer"
    INVOICE = "invoice"
    # Paid by goods sent back: only exchange orders, made by the system, use it.
    EXCHANGE_CREDIT = "exchange_credit"

    @property
    def pays_later(self) -> bool:
        """Paid after the order is placed, outside the gateway: no authorization."""
        return self in (PaymentMethod.BANK_TRANSFER, PaymentMethod.INVOICE)

    @property
    def needs_token(self) -> bool:
        """Taken through the gateway with a token from its client-side form."""
        return self in (PaymentMethod.CARD, PaymentMethod.WALLET)


class DeliveryOption(StrEnum):
    """How fast the parcel travels; the carrier is told, and express costs its own fee."""

    STANDARD = "standard"
    EXPRESS = "express"


class Strict(BaseModel):
    """Input models refuse fields they do not know, so typos are errors, not silence."""

    model_config = ConfigDict(extra="forbid")


class Customer(Strict):
    """Who places the order."""

    id: CustomerId
    name: Text
    email: Email
    phone: Phone = ""


class Address(Strict):
    """Where a parcel goes, and whom the carrier calls."""

    name: Text
    line1: Text
    line2: OptionalText = ""
    city: Text
    postal_code: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)
    ]
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
    phone: OptionalText = ""


class PaymentInput(Strict):
    """The payment instrument; card and wallet tokens come from the gateway's client-side form."""

    method: PaymentMethod = PaymentMethod.CARD
    token: OptionalText = ""

    @model_validator(mode="after")
    def _token_for_gateway_methods(self) -> PaymentInput:
        if self.method.needs_token and not self.token:
            raise ValueError(f"a {self.method.value} payment needs a token")
        return self


class LineInput(BaseModel):
    """What the customer asks for; prices a client adds are ignored, never trusted."""

    model_config = ConfigDict(extra="ignore")

    sku: Sku
    quantity: Quantity


class OrderLine(BaseModel):
    """A priced line of the order."""

    sku: str
    name: str
    variant: str = ""
    quantity: int
    unit_price: Decimal
    line_total: Decimal


class Totals(BaseModel):
    """Every amount of an order, computed by the server (§1)."""

    currency: str
    subtotal: Decimal
    discount: Decimal
    shipping: Decimal
    tax: Decimal
    total: Decimal
    # Exchange credit from goods sent back, already taken off `total` (what is left to pay);
    # left out of the JSON when there is none, as on every order but an exchange.
    credit: Decimal = Field(default=Decimal("0"), exclude_if=lambda v: not v)


class PricedOrder(BaseModel):
    """Lines and totals as the pricing rules make them."""

    lines: list[OrderLine]
    totals: Totals
    promotion: str = ""


class PaymentRecord(BaseModel):
    """An authorization at the gateway and what became of it."""

    authorization_id: str
    amount: Decimal
    currency: str
    status: str
    captured: Decimal = Decimal("0")
    # Given back of what was captured; histories from before it was kept decode as nothing.
    refunded: Decimal = Field(default=Decimal("0"), exclude_if=lambda v: not v)


class RefundRecord(BaseModel):
    """Money given back, once per reference (the refund's idempotency key at the gateway)."""

    reference: str
    authorization_id: str
    amount: Decimal
    currency: str
    reason: str
    lines: dict[str, int] = Field(default_factory=dict)
    at: datetime


class ShipmentRecord(BaseModel):
    """A parcel booked with the carrier."""

    shipment_id: str
    tracking_number: str
    warehouse: str = ""
    status: str
    events: list[str] = Field(default_factory=list)
    batch: int = 1
    left_warehouse: bool = False
    # Set for the parcels of a split order, each run by its own child workflow.
    shipment_no: str = ""
    lines: dict[str, int] = Field(default_factory=dict)
    amount: Decimal | None = None
    captured: Decimal = Decimal("0")


class AlertRecord(BaseModel):
    """Something staff must look at."""

    seq: int
    at: datetime
    kind: str
    severity: str
    message: str
    resolved: bool = False


class HistoryEntry(BaseModel):
    """One line of the order's history: what happened, when, and who did it."""

    seq: int
    at: datetime
    kind: str
    actor: str
    status: OrderStatus
    detail: str = ""


class OrderView(BaseModel):
    """The whole order as the API shows it."""

    order_id: str
    status: OrderStatus
    status_reason: str = ""
    customer: Customer
    channel: Channel
    channel_order_id: str = ""
    ship_to: Address
    payment_method: PaymentMethod
    # Views recorded before the option existed load as standard, which is what they got.
    delivery: DeliveryOption = DeliveryOption.STANDARD
    lines: list[OrderLine]
    totals: Totals
    promotion: str = ""
    notes: str = ""
    warehouse: str = ""
    bill_to: Address | None = None
    review_reasons: list[str] = Field(default_factory=list)
    allocation: list[str] = Field(default_factory=list)
    open_exception: str = ""
    payments: list[PaymentRecord] = Field(default_factory=list)
    refunds: list[RefundRecord] = Field(default_factory=list)
    shipments: list[ShipmentRecord] = Field(default_factory=list)
    related: list[dict[str, str]] = Field(default_factory=list)
    history: list[HistoryEntry] = Field(default_factory=list)
    alerts: list[AlertRecord] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    # Counts the changes made to the order (refusals change nothing); the API's ETag.
    version: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def books(self) -> Books:
        """Authorized, captured, refunded and kept, from the payments: stored with the view."""
        return books_of(self.payments, self.totals.currency)
