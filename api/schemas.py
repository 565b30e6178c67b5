"""Request bodies of the public API (§11); responses are the models' views."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from models.order import Address, Channel, Customer, LineInput, PaymentInput
from workflows.contract import Contact


class OrderCreate(BaseModel):
    """A new order. Prices and totals a client sends are ignored: the server prices the order."""

    model_config = ConfigDict(extra="ignore")

    customer: Customer
    channel: Channel = Channel.WEB
    channel_order_id: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""
    lines: Annotated[list[LineInput], Field(min_length=1, max_length=200)]
    ship_to: Address
    payment: PaymentInput
    promotion_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] = ""
    notes: Annotated[str, StringConstraints(max_length=2000)] = ""


class OrderModify(BaseModel):
    """An edit of a running order: any of address, contact, lines."""

    model_config = ConfigDict(extra="forbid")

    ship_to: Address | None = None
    contact: Contact | None = None
    lines: Annotated[list[LineInput], Field(min_length=1, max_length=200)] | None = None


class OrderCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""
