"""Everything callers need to talk to an order workflow: ids, names, inputs, search attributes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from temporalio.common import SearchAttributeKey

from models.order import (
    Address,
    Channel,
    Customer,
    LineInput,
    PaymentInput,
    PricedOrder,
)

ORDER_WORKFLOW = "OrderWorkflow"
WORKFLOW_ID_PREFIX = "order-"

# Signals (usable from the CLI and the UI) and updates (the API's path) run the same rules.
SIGNAL_MODIFY = "modify"
SIGNAL_CANCEL = "cancel"
SIGNAL_CARRIER_EVENT = "carrier_event"
UPDATE_MODIFY = "modify_order"
UPDATE_CANCEL = "cancel_order"
QUERY_VIEW = "view"

SA_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
SA_CUSTOMER = SearchAttributeKey.for_keyword("CustomerId")
SA_CHANNEL = SearchAttributeKey.for_keyword("Channel")
SA_SKUS = SearchAttributeKey.for_keyword_list("Skus")
SA_TOTAL = SearchAttributeKey.for_float("OrderTotal")
SEARCH_ATTRIBUTES = (SA_STATUS, SA_CUSTOMER, SA_CHANNEL, SA_SKUS, SA_TOTAL)

# The error type an edit refusal carries; the API maps it to 409.
EDIT_REFUSED = "EditRefused"


def order_workflow_id(order_id: str) -> str:
    """The workflow id of an order, derived from its number."""
    return f"{WORKFLOW_ID_PREFIX}{order_id}"


def order_id_from_workflow_id(workflow_id: str) -> str:
    """The order number inside a workflow id."""
    return workflow_id.removeprefix(WORKFLOW_ID_PREFIX)


class OrderPolicy(BaseModel):
    """Timer lengths and retry ceilings, fixed at order start so replays see the same values."""

    warehouse_release_seconds: float = 0.0
    after_sales_window_seconds: float = 14 * 24 * 3600.0
    retry_max_interval_seconds: float = 10.0


class OrderInput(BaseModel):
    """Everything the workflow needs to run one order; priced by the server beforehand."""

    order_id: str
    customer: Customer
    channel: Channel
    channel_order_id: str = ""
    ship_to: Address
    payment: PaymentInput
    priced: PricedOrder
    promotion_code: str = ""
    notes: str = ""
    created_at: datetime
    actor: str = ""
    policy: OrderPolicy = Field(default_factory=OrderPolicy)


class Contact(BaseModel):
    """The customer's contact details that may change while the order runs."""

    email: str | None = None
    phone: str | None = None


class ModifyRequest(BaseModel):
    """An edit: any of a new address, new contact details, new lines."""

    ship_to: Address | None = None
    contact: Contact | None = None
    lines: list[LineInput] | None = None
    actor: str = "unknown"


class CancelRequest(BaseModel):
    reason: str = ""
    actor: str = "unknown"


class CarrierEvent(BaseModel):
    """A tracking event as the carrier's webhook reports it."""

    event_id: str
    shipment_id: str
    tracking_number: str = ""
    type: str
    occurred_at: datetime | None = None
    detail: str = ""
