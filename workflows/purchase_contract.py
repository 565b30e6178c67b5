"""Everything callers need to talk to a purchase order workflow: ids, names, inputs."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from models.purchasing import PurchaseOrderView

PURCHASE_ORDER_WORKFLOW = "PurchaseOrderWorkflow"
PURCHASE_ORDER_ID_PREFIX = "purchase-order-"
UPDATE_PO_CONFIRM = "confirm_purchase_order"
UPDATE_PO_RECEIVE = "receive_goods"
UPDATE_PO_CANCEL = "cancel_purchase_order"
QUERY_PO_VIEW = "purchase_order_view"
# Receipts, views and emails written by regular activities, so only from completed tasks.
PATCH_PO_WRITES_AFTER_COMMIT = "purchase-order-writes-after-commit"


def purchase_order_workflow_id(po_id: str) -> str:
    return f"{PURCHASE_ORDER_ID_PREFIX}{po_id}"


class PurchasePolicy(BaseModel):
    """Timer lengths, fixed at start so replays see the same values."""

    # Staff hear about a supplier that has not confirmed by then (once).
    confirm_reminder_seconds: float = 2 * 24 * 3600.0
    allocation_strategy: str = "fewest_shipments"


class PurchaseOrderInput(BaseModel):
    view: PurchaseOrderView
    actor: str = ""
    policy: PurchasePolicy = Field(default_factory=PurchasePolicy)


class PoConfirm(BaseModel):
    supplier_reference: str = ""
    expected_at: datetime | None = None
    actor: str = "unknown"


class PoReceipt(BaseModel):
    receipt_id: str
    lines: dict[str, int]
    actor: str = "unknown"


class PoCancel(BaseModel):
    reason: str = ""
    actor: str = "unknown"
