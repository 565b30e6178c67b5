"""Refusals the API makes about an existing order join that order's history.

The workflow records the refusals it makes itself; these are the ones that never reach it: a
body that does not validate, a finished order, a rule the API checks first. Only the orders a
caller may see are written to, so a caller cannot write into anyone else's history.
"""

from __future__ import annotations

import logging

from fastapi import Request

from models import orders_repo, request_refusals
from models.api_keys import Caller, Role
from models.tables import Order

log = logging.getLogger(__name__)

CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Not recorded: who may not act (401, 403), what does not exist (404), and outages (5xx).
RECORDED = frozenset({400, 409, 412, 413, 422})


async def note_refusal(request: Request, status: int, code: str, message: str) -> None:
    """Keep a refused change of an order the caller may see; never fails the answer."""
    order_id = request.path_params.get("order_id")
    caller: Caller | None = getattr(request.state, "caller", None)
    if request.method not in CHANGES or status not in RECORDED or not order_id or not caller:
        return
    try:
        async with request.app.state.sessions.begin() as session:
            order = await session.get(Order, order_id)
            if order is None:
                return
            owner = await orders_repo.order_owner(session, order_id)
            if caller.role == Role.CUSTOMER and owner != caller.customer_id:
                return
            await request_refusals.record(
                session,
                order_id=order_id,
                order_status=order.status,
                actor=caller.actor,
                request=f"{request.method} {request.url.path}",
                status_code=status,
                code=code,
                message=message,
            )
    except Exception:
        # The refusal is answered all the same; only its line in the history is missing.
        log.exception("could not record a refused %s of %s", request.method, order_id)
