"""Request bodies of the public API (§11); responses are the models' views."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
)

from models.order import (
    Address,
    Channel,
    Customer,
    DeliveryOption,
    Email,
    LineInput,
    PaymentInput,
    PaymentMethod,
    Phone,
)

ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _iso_8601(value: object) -> object:
    # Pydantic also reads numbers and numeric strings ("0") as Unix times; the API promises
    # ISO 8601 (§11), and a number where a date belongs is a client's bug.
    if isinstance(value, date) or (isinstance(value, str) and ISO_DATE.match(value)):
        return value
    raise ValueError("use ISO 8601: YYYY-MM-DD, or YYYY-MM-DDThh:mm:ssZ for a time")


IsoDate = Annotated[date, BeforeValidator(_iso_8601)]
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_8601)]


def customer_payment(payment: PaymentInput) -> PaymentInput:
    """A payment a customer may choose: not the credit only an approved return gives."""
    if payment.method == PaymentMethod.EXCHANGE_CREDIT:
        raise ValueError("exchange credit is only given by an approved return")
    return payment


class OrderCreate(BaseModel):
    """A new order. Prices and totals a client sends are ignored: the server prices the order."""

    model_config = ConfigDict(extra="ignore")

    customer: Customer
    channel: Channel = Channel.WEB
    channel_order_id: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""
    lines: Annotated[list[LineInput], Field(min_length=1, max_length=200)]
    ship_to: Address
    bill_to: Address | None = None
    # The customer accepts that available items ship first and the rest follows.
    allow_partial_shipment: StrictBool = False
    # Express costs the ship-to country's express fee, and is refused where not offered.
    delivery: DeliveryOption = DeliveryOption.STANDARD
    payment: PaymentInput
    promotion_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] = ""
    notes: Annotated[str, StringConstraints(max_length=2000)] = ""

    @field_validator("payment")
    @classmethod
    def _no_system_methods(cls, payment: PaymentInput) -> PaymentInput:
        return customer_payment(payment)


class ContactBody(BaseModel):
    """New contact details, held to the same rules as the order's customer."""

    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    phone: Phone | None = None


class OrderModify(BaseModel):
    """An edit of a running order: any of address, contact, lines."""

    model_config = ConfigDict(extra="forbid")

    ship_to: Address | None = None
    contact: ContactBody | None = None
    lines: Annotated[list[LineInput], Field(min_length=1, max_length=200)] | None = None


class OrderCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


class ReviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


class PaymentBody(BaseModel):
    """A payment received outside the gateway (bank transfer, invoice)."""

    model_config = ConfigDict(extra="forbid")

    amount: Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=2)]
    # When given, it must be the order's: money in another currency is not that amount.
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    reference: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""


class PaymentMethodBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal[PaymentMethod.CARD, PaymentMethod.WALLET] = PaymentMethod.CARD
    token: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class RefundSettledBody(BaseModel):
    """Money due back that staff sent back by hand, e.g. a transfer kept as an overpayment."""

    model_config = ConfigDict(extra="forbid")
    payment_id: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
    ]
    reference: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


class ExceptionActionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["reship", "refund", "contact_customer"]
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


class RestockBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    warehouse_id: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)
    ]
    quantity: Annotated[int, Field(gt=0, le=1_000_000, strict=True)]


Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class ReturnBody(BaseModel):
    """A return request: which lines, why, and the evidence (a photo or file reference)."""

    model_config = ConfigDict(extra="forbid")

    lines: Annotated[list[LineInput], Field(min_length=1, max_length=200)]
    reason: Reason
    evidence: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""
    kind: Literal["refund", "exchange"] = "refund"
    exchange_lines: Annotated[list[LineInput], Field(min_length=1, max_length=200)] | None = None


class ReturnDecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


class ReturnReceiptBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    condition: Literal["sellable", "damaged"]
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


class ParcelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    warehouse_id: Annotated[str, StringConstraints(max_length=32)] | None = None
    lines: Annotated[list[LineInput], Field(min_length=1, max_length=100)]


class SplitBody(BaseModel):
    """Staff split an order's lines into parcels (before picking)."""

    model_config = ConfigDict(extra="forbid")

    parcels: Annotated[list[ParcelBody], Field(min_length=2, max_length=20)]
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


class MergeBody(BaseModel):
    """Orders of one customer to one address that should ship as one parcel."""

    model_config = ConfigDict(extra="forbid")

    order_ids: Annotated[
        list[Annotated[str, StringConstraints(max_length=40)]], Field(min_length=2, max_length=20)
    ]
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""

    @field_validator("order_ids")
    @classmethod
    def _distinct(cls, ids: list[str]) -> list[str]:
        if len(set(ids)) != len(ids):
            raise ValueError("each order may appear only once")
        return ids


class NoteBody(BaseModel):
    """A staff note about a customer, optionally about one of their orders."""

    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    order_id: Annotated[str, StringConstraints(max_length=40)] | None = None


class FeedbackBody(BaseModel):
    """A customer's rating of an order they received."""

    model_config = ConfigDict(extra="forbid")

    rating: Annotated[int, Field(ge=1, le=5, strict=True)]
    comment: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = ""


class ReorderBody(BaseModel):
    """Order the same lines again: a payment for the new order, and optionally a new address."""

    model_config = ConfigDict(extra="forbid")

    payment: PaymentInput
    ship_to: Address | None = None
    # Absent: the same delivery option as the order repeated.
    delivery: DeliveryOption | None = None

    @field_validator("payment")
    @classmethod
    def _no_system_methods(cls, payment: PaymentInput) -> PaymentInput:
        return customer_payment(payment)
