"""Everything callers need to talk to an order workflow: ids, names, inputs, search attributes."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints
from temporalio.common import RetryPolicy, SearchAttributeKey, SearchAttributePair

from models.order import (
    Address,
    Channel,
    Customer,
    DeliveryOption,
    Email,
    LineInput,
    OrderLine,
    OrderView,
    PaymentInput,
    PaymentMethod,
    Phone,
    PricedOrder,
    ShipmentRecord,
)
from models.status import OrderStatus
from workflows.purchase_contract import purchase_order_workflow_id

ORDER_WORKFLOW = "OrderWorkflow"
RETURN_WORKFLOW = "ReturnWorkflow"
SHIPMENT_WORKFLOW = "ShipmentWorkflow"
CONSOLIDATION_WORKFLOW = "ConsolidationWorkflow"
WORKFLOW_ID_PREFIX = "order-"
RETURN_ID_PREFIX = "return-"
SHIPMENT_ID_PREFIX = "shipment-"
CONSOLIDATION_ID_PREFIX = "consolidation-"

# Signals (usable from the CLI and the UI) and updates (the API's path) run the same rules.
SIGNAL_MODIFY = "modify"
SIGNAL_CANCEL = "cancel"
SIGNAL_CARRIER_EVENT = "carrier_event"
UPDATE_MODIFY = "modify_order"
UPDATE_CANCEL = "cancel_order"
QUERY_VIEW = "view"
SIGNAL_REVIEW = "review"
UPDATE_REVIEW = "review_order"
SIGNAL_PAYMENT = "payment_received"
UPDATE_PAYMENT = "record_payment"
SIGNAL_PAYMENT_METHOD = "payment_method"
UPDATE_PAYMENT_METHOD = "change_payment_method"
SIGNAL_EXCEPTION_ACTION = "exception_action"
UPDATE_EXCEPTION_ACTION = "resolve_exception"
# Staff sent back by hand money the gateway cannot refund (a transfer kept as an overpayment).
SIGNAL_SETTLE_REFUND = "refund_settled"
UPDATE_SETTLE_REFUND = "settle_refund"
SIGNAL_REQUEST_RETURN = "return_request"
UPDATE_REQUEST_RETURN = "request_return"
SIGNAL_RETURN_DECISION = "return_decision"
UPDATE_RETURN_DECISION = "decide_return"
SIGNAL_RETURN_RECEIPT = "return_receipt"
UPDATE_RETURN_RECEIPT = "receive_return"
QUERY_RETURN_VIEW = "return_view"
# Sent by the restock route after it reserved stock for a backordered order.
SIGNAL_STOCK_ALLOCATED = "stock_allocated"

# A split order's parcels. Workflows can only signal one another, so the parent asks a child
# by signal and the child answers with a report signal (the parent's update waits for it).
SIGNAL_SHIPMENT_REPORT = "shipment_report"
SIGNAL_SHIPMENT_CANCEL = "cancel_shipment"
SIGNAL_SHIPMENT_ADDRESS = "change_address"
# Staff settled the parcel's carrier exception (refunded or reshipped): it follows no more events.
SIGNAL_SHIPMENT_WRITE_OFF = "write_off"
QUERY_SHIPMENT_VIEW = "shipment_view"
SIGNAL_SPLIT = "split"
UPDATE_SPLIT = "split_order"
# Merging: the consolidation invites each order, which answers; an order leaves by withdrawing.
SIGNAL_MERGE_INVITE = "merge_invite"
SIGNAL_MERGE_RELEASE = "merge_release"
SIGNAL_MERGE_ANSWER = "merge_answer"
SIGNAL_MERGE_WITHDRAW = "merge_withdraw"
UPDATE_MERGE_FORMED = "formed"
QUERY_CONSOLIDATION_VIEW = "consolidation_view"

# Workflow code versions, for workflow.patched(): orders started before a change replay the
# branch they took (see the README, "Changing workflow code").
PATCH_LIFECYCLE_V2 = "lifecycle-v2-review-backorder-paylater-notifications"
PATCH_SPLIT_SHIPMENTS = "split-shipments-v3"
PATCH_CONTACT_SEARCH = "contact-search-attributes"
PATCH_HOLD_BEFORE_PICKING = "hold-parcels-before-picking"
PATCH_REAUTHORIZE_BEFORE_CONFIRMED = "reauthorize-edits-before-confirmed"
PATCH_PARCEL_KNOWN_BEFORE_START = "parcel-known-before-its-start"
PATCH_MAIL_AFTER_COMMIT = "mail-from-completed-tasks-only"
PATCH_MAIL_WITH_NEXT_TASK = "mail-with-the-next-task"
PATCH_RETURN_WRITES_AFTER_COMMIT = "return-writes-after-commit"
# One marker for every order change above: an order started since takes each of them without
# its own marker. Every marker of a new order also has the server upsert a search attribute
# (TemporalChangeVersion), which costs it more than the marker itself.
PATCH_EVERY_CHANGE_SO_FAR = "every-order-change-so-far"
# Each refund is booked against the payment it went back to, so a second or third return is
# refunded at the gateway too; an exchange is valued against its credit when it is asked for.
PATCH_AFTER_SALES_MONEY = "after-sales-money"
# Signals run their update's checks, and a refused one is kept in the history with an alert.
PATCH_SAFE_SIGNALS = "signals-as-safe-as-updates"
# A payment reference is booked once, and money for a paid order is never a second payment.
PATCH_PAYMENT_ONCE = "payment-booked-once"
# A parcel reports every tracking step and every booking it replaced to its order's history.
PATCH_PARCEL_TRACKING = "parcel-reports-every-tracking-step"

SA_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
SA_CUSTOMER = SearchAttributeKey.for_keyword("CustomerId")
SA_CHANNEL = SearchAttributeKey.for_keyword("Channel")
SA_SKUS = SearchAttributeKey.for_keyword_list("Skus")
SA_TOTAL = SearchAttributeKey.for_float("OrderTotal")
# On a parcel's workflow (and a consolidation's): the order it belongs to.
SA_PARENT = SearchAttributeKey.for_keyword("ParentOrder")
# Who the order is for, as staff look customers up; a contact edit keeps email and phone current.
SA_CUSTOMER_NAME = SearchAttributeKey.for_keyword("CustomerName")
SA_CUSTOMER_EMAIL = SearchAttributeKey.for_keyword("CustomerEmail")
SA_CUSTOMER_PHONE = SearchAttributeKey.for_keyword("CustomerPhone")
SEARCH_ATTRIBUTES = (
    SA_STATUS,
    SA_CUSTOMER,
    SA_CHANNEL,
    SA_SKUS,
    SA_TOTAL,
    SA_PARENT,
    SA_CUSTOMER_NAME,
    SA_CUSTOMER_EMAIL,
    SA_CUSTOMER_PHONE,
)


def customer_search_attributes(customer: Customer) -> list[SearchAttributePair[str]]:
    """The customer's name, email and phone as the Temporal UI searches them (no empty phone)."""
    pairs = [
        SearchAttributePair(SA_CUSTOMER_NAME, customer.name),
        SearchAttributePair(SA_CUSTOMER_EMAIL, customer.email),
    ]
    if customer.phone:
        pairs.append(SearchAttributePair(SA_CUSTOMER_PHONE, customer.phone))
    return pairs


# The error type an edit refusal carries; the API maps it to 409.
EDIT_REFUSED = "EditRefused"
# The error type of an update refused because it came after its `not_after`.
UPDATE_EXPIRED = "UpdateExpired"


def order_workflow_id(order_id: str) -> str:
    """The workflow id of an order, derived from its number."""
    return f"{WORKFLOW_ID_PREFIX}{order_id}"


def order_id_from_workflow_id(workflow_id: str) -> str:
    """The order number inside a workflow id."""
    return workflow_id.removeprefix(WORKFLOW_ID_PREFIX)


def return_workflow_id(return_id: str) -> str:
    """The workflow id of a return, derived from its number."""
    return f"{RETURN_ID_PREFIX}{return_id}"


def return_number(order_id: str, n: int) -> str:
    """The n-th return of an order: RT-20261123-0F3K9Q7A-1."""
    return f"RT-{order_id.removeprefix('SO-')}-{n}"


def shipment_number(order_id: str, batch: int) -> str:
    """The parcel `batch` of a split order: SH-20261123-0F3K9Q7A-2."""
    return f"SH-{order_id.removeprefix('SO-')}-{batch}"


def shipment_workflow_id(shipment_no: str) -> str:
    """The workflow id of one parcel of a split order."""
    return f"{SHIPMENT_ID_PREFIX}{shipment_no}"


def consolidation_workflow_id(consolidation_id: str) -> str:
    """The workflow id of a merged shipment."""
    return f"{CONSOLIDATION_ID_PREFIX}{consolidation_id}"


def workflow_id_for_reference(reference: str) -> str:
    """The workflow a carrier's shipment reference (an order, return or parcel number) is for."""
    if reference.startswith("RT-"):
        return return_workflow_id(reference)
    if reference.startswith("CN-"):
        return consolidation_workflow_id(reference)
    if reference.startswith("SH-"):
        return shipment_workflow_id(reference)
    if reference.startswith("PO-"):
        return purchase_order_workflow_id(reference)
    return order_workflow_id(reference)


HOUR = 3600.0
DAY = 24 * HOUR


class OrderPolicy(BaseModel):
    """Timer lengths and retry ceilings, fixed at order start so replays see the same values."""

    warehouse_release_seconds: float = 0.0
    after_sales_window_seconds: float = 14 * DAY
    retry_max_interval_seconds: float = 10.0
    review_escalate_seconds: float = 4 * HOUR
    review_timeout_seconds: float = DAY
    payment_timeout_seconds: float = 3 * DAY
    new_payment_method_seconds: float = DAY
    backorder_timeout_seconds: float = 14 * DAY
    backorder_recheck_seconds: float = HOUR
    return_decision_seconds: float = 3 * DAY
    allocation_strategy: str = "fewest_shipments"
    # Orders of one customer to one address placed this close together ship as one parcel.
    merge_window_seconds: float = 0.0
    # How long an order may sit in a status before staff are alerted; absent means no limit.
    sla_seconds: dict[str, float] = Field(default_factory=dict)
    # The longest an email waits for the order's next workflow task to carry it out.
    mail_hold_seconds: float = 1.0


def remote_retry(policy: OrderPolicy) -> RetryPolicy:
    """Retries for calls to third parties: an outage is retried until they are back.

    Business refusals are non-retryable errors raised by the activities themselves.
    """
    return RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        maximum_interval=timedelta(seconds=max(0.2, policy.retry_max_interval_seconds)),
    )


class OrderInput(BaseModel):
    """Everything the workflow needs to run one order; priced by the server beforehand."""

    order_id: str
    customer: Customer
    channel: Channel
    channel_order_id: str = ""
    ship_to: Address
    bill_to: Address | None = None
    allow_partial_shipment: bool = False
    payment: PaymentInput
    priced: PricedOrder
    # Inputs stored before the option existed load as standard.
    delivery: DeliveryOption = DeliveryOption.STANDARD
    promotion_code: str = ""
    notes: str = ""
    created_at: datetime
    actor: str = ""
    related: list[dict[str, str]] = Field(default_factory=list)
    policy: OrderPolicy = Field(default_factory=OrderPolicy)


# The bounds the API holds its request bodies to: a signal typed by hand meets the same ones.
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
Actor = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Lines = Annotated[list[LineInput], Field(min_length=1, max_length=200)]


class EditRequest(BaseModel):
    """What every edit of a running order carries besides its own fields."""

    actor: Actor = "unknown"
    # The order's version the caller last saw (If-Match): refused if the order moved on since.
    expected_version: Annotated[int, Field(ge=0)] | None = None
    # An update the order has not taken by then is refused when it comes, so a caller that
    # stopped waiting may say "nothing changed" and mean it.
    not_after: datetime | None = None


def placed_view(inp: OrderInput, at: datetime) -> OrderView:
    """The view of an order that has just been placed, as of `at`."""
    return OrderView(
        order_id=inp.order_id,
        status=OrderStatus.PLACED,
        customer=inp.customer,
        channel=inp.channel,
        channel_order_id=inp.channel_order_id,
        ship_to=inp.ship_to,
        bill_to=inp.bill_to,
        payment_method=inp.payment.method,
        delivery=inp.delivery,
        lines=inp.priced.lines,
        totals=inp.priced.totals,
        promotion=inp.priced.promotion,
        notes=inp.notes,
        related=list(inp.related),
        created_at=inp.created_at,
        updated_at=at,
    )


class Contact(BaseModel):
    """The customer's contact details that may change while the order runs."""

    email: Email | None = None
    phone: Phone | None = None


class ModifyRequest(EditRequest):
    """An edit: any of a new address, new contact details, new lines."""

    ship_to: Address | None = None
    contact: Contact | None = None
    lines: Lines | None = None


class CancelRequest(EditRequest):
    reason: Note = ""


class CarrierEvent(BaseModel):
    """A tracking event as the carrier's webhook reports it."""

    event_id: str
    shipment_id: str
    tracking_number: str = ""
    type: str
    occurred_at: datetime | None = None
    detail: str = ""


class ReviewDecision(EditRequest):
    """Staff's verdict on an order held for review."""

    decision: Literal["approve", "reject"]
    note: Note = ""


class PaymentReceived(EditRequest):
    """Money for a pay-later order: recorded by staff, or arrived at the gateway (a transfer)."""

    amount: Annotated[Decimal, Field(gt=0, max_digits=16)]
    reference: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""
    # A transfer is money that really arrived: when it cannot pay the order it is kept, to be
    # sent back, not refused.
    arrived: bool = False


class PaymentMethodChange(EditRequest):
    """A new card or wallet after a decline."""

    method: Literal[PaymentMethod.CARD, PaymentMethod.WALLET] = PaymentMethod.CARD
    token: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class RefundSettled(EditRequest):
    """Money due back to the customer was sent back by hand (a bank transfer, say)."""

    payment_id: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
    ]
    reference: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""
    note: Note = ""


class ExceptionAction(EditRequest):
    """What staff do about a carrier exception."""

    action: Literal["reship", "refund", "contact_customer"]
    note: Note = ""


class ReturnRequest(EditRequest):
    """A customer sends lines back, for money or for other goods."""

    lines: Lines
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    evidence: Note = ""
    kind: Literal["refund", "exchange"] = "refund"
    exchange_lines: Lines | None = None


class ReturnDecision(BaseModel):
    decision: Literal["approve", "reject"]
    note: Note = ""
    actor: Actor = "unknown"


class ReturnReceipt(BaseModel):
    """What the warehouse found in the parcel that came back."""

    condition: Literal["sellable", "damaged"]
    note: Note = ""
    actor: Actor = "unknown"


class ReturnInput(BaseModel):
    """Everything a return needs, fixed when the order accepted the request."""

    return_id: str
    order_id: str
    customer: Customer
    ship_to: Address
    warehouse: str
    lines: list[OrderLine]
    refund_amount: Decimal
    currency: str
    authorization_id: str | None = None
    kind: Literal["refund", "exchange"] = "refund"
    exchange_lines: list[LineInput] | None = None
    # The goods wanted, priced when the return was asked for, and how the order was paid: the
    # part of their value the credit does not cover is paid the same way. Returns asked for
    # before exchanges were valued have neither and price their goods when they ship.
    exchange: PricedOrder | None = None
    payment: PaymentInput | None = None
    channel: Channel
    reason: str
    evidence: str = ""
    requested_at: datetime
    actor: str = ""
    policy: OrderPolicy = Field(default_factory=OrderPolicy)


class ReturnResult(BaseModel):
    """How a return ended, for the order it belongs to."""

    return_id: str
    status: Literal["rejected", "refunded", "exchanged", "refund_due"]
    refunded: Decimal = Decimal("0.00")
    exchange_order_id: str = ""


class ShipmentInput(BaseModel):
    """One parcel of a split order: what it carries, where to, and its share of the payment."""

    shipment_no: str
    order_id: str
    batch: int
    warehouse: str
    lines: list[OrderLine]
    ship_to: Address
    amount: Decimal
    currency: str
    authorization_id: str | None = None
    policy: OrderPolicy = Field(default_factory=OrderPolicy)
    delivery: DeliveryOption = DeliveryOption.STANDARD


class ShipmentReport(BaseModel):
    """A parcel's news for its parent: what happened and the parcel as it stands."""

    shipment_no: str
    event: Literal[
        "picking",
        "booked",
        "left",
        "delivered",
        "exception",
        "cancelled",
        "cancel_refused",
        "address_changed",
        "address_refused",
        "failed",
        "tracking",
        "booking_cancelled",
    ]
    detail: str = ""
    tracking_number: str = ""
    carrier_shipment_id: str = ""
    captured: Decimal = Decimal("0")
    carrier_event: str = ""


class ShipmentResult(BaseModel):
    """How a parcel ended."""

    shipment_no: str
    status: Literal["delivered", "cancelled", "failed", "written_off"]
    captured: Decimal = Decimal("0")
    detail: str = ""


class ShipmentCancel(BaseModel):
    actor: str = "system"
    reason: str = ""


class ShipmentAddress(BaseModel):
    ship_to: Address
    actor: str = "system"


class ParcelSplit(BaseModel):
    """One parcel of a split made by hand: its lines, and optionally its warehouse."""

    warehouse_id: Annotated[str, StringConstraints(max_length=32)] | None = None
    lines: Annotated[list[LineInput], Field(min_length=1, max_length=100)]


class SplitRequest(EditRequest):
    """Staff split an order's lines into parcels before picking."""

    parcels: Annotated[list[ParcelSplit], Field(min_length=2, max_length=20)]
    note: Note = ""


class MergeMember(BaseModel):
    """One order in a merged shipment, as the consolidation knows it."""

    order_id: str
    state: Literal["invited", "joined", "refused", "withdrawn", "released"] = "invited"
    reason: str = ""
    batch: int = 1
    lines: dict[str, int] = Field(default_factory=dict)
    warehouse: str = ""
    amount: Decimal = Decimal("0")
    authorization_id: str | None = None
    captured: Decimal = Decimal("0")
    delivery: DeliveryOption = DeliveryOption.STANDARD


class ConsolidationInput(BaseModel):
    """Orders of one customer to one address that ship as one parcel."""

    consolidation_id: str
    customer_id: str
    ship_to: Address
    order_ids: list[str]
    actor: str = "system"
    reason: str = ""
    policy: OrderPolicy = Field(default_factory=OrderPolicy)


class ConsolidationView(BaseModel):
    """A merged shipment: its members, its parcel and where it stands."""

    consolidation_id: str
    status: Literal["forming", "formed", "picking", "shipping", "delivered", "dissolved"]
    customer_id: str
    ship_to: Address
    members: list[MergeMember]
    parcel: ShipmentRecord
    reason: str = ""


class MergeInvite(BaseModel):
    consolidation_id: str


class MergeAnswer(BaseModel):
    """An order's answer to an invitation: it joins with its goods and payment, or says why not."""

    order_id: str
    joined: bool
    reason: str = ""
    lines: dict[str, int] = Field(default_factory=dict)
    warehouse: str = ""
    amount: Decimal = Decimal("0")
    authorization_id: str | None = None
    customer_id: str = ""
    ship_to: Address | None = None
    delivery: DeliveryOption = DeliveryOption.STANDARD


class MergeRelease(BaseModel):
    consolidation_id: str
    reason: str = ""


class MergeWithdraw(BaseModel):
    order_id: str
    actor: str = "system"
    reason: str = ""
