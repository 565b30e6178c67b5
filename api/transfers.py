"""Bank transfers the payment gateway announces: matched to their order by the reference."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api import order_calls
from api.errors import ApiError
from api.order_actions import current_view
from models import orders_repo
from models.order import OrderView
from providers.payment import TransferReceived
from workflows import contract as c

log = logging.getLogger(__name__)


async def record_transfer(
    client: Client, sessions: async_sessionmaker[AsyncSession], event: TransferReceived
) -> dict[str, Any]:
    """Give the money to its order; the answer says what became of it.

    The gateway retries until it gets a 2xx, so only "try again later" is an error here.
    Money that cannot be booked is logged for staff with the transfer id.
    """
    order_id = event.reference.strip()
    async with sessions() as session:
        if not await orders_repo.order_known(session, order_id):
            log.warning("transfer %s names no order: %r", event.transfer_id, event.reference)
            return {"status": "unmatched", "reason": f"no order {order_id}"}
        view = await current_view(session, client, order_id)
    if any(p.authorization_id.endswith(f":{event.transfer_id}") for p in view.payments):
        return {"status": "duplicate", "order_id": order_id}
    if event.currency != view.totals.currency:
        return _refused(event, order_id, f"the order is in {view.totals.currency}")
    req = c.PaymentReceived(
        amount=event.amount, reference=event.transfer_id, actor="gateway", arrived=True
    )
    try:
        after = await order_calls.run_update(client, order_id, c.UPDATE_PAYMENT, req, OrderView)
    except ApiError as exc:
        if exc.status >= 500:
            # Not taken yet (503) or taken with no answer yet (504): the gateway sends it again.
            raise
        return _refused(event, order_id, exc.message)
    booked = next(
        (p for p in after.payments if p.authorization_id.endswith(f":{event.transfer_id}")), None
    )
    if booked is not None and booked.status == "refund_due":
        # The order could not take it (paid already, another amount): kept, staff are alerted.
        return {"status": "kept_for_refund", "order_id": order_id, "order_status": after.status}
    return {"status": "recorded", "order_id": order_id, "order_status": after.status}


def _refused(event: TransferReceived, order_id: str, reason: str) -> dict[str, Any]:
    log.warning(
        "transfer %s of %s %s for %s not booked: %s",
        event.transfer_id,
        event.amount,
        event.currency,
        order_id,
        reason,
    )
    return {"status": "refused", "order_id": order_id, "reason": reason}
