"""What the API's routes and the console both do with an order: read it as staff or its
customer see it, and change it through its workflow. Each rule is written once, here or in the
workflow, and answers with the same error codes wherever it is called from."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api import order_calls
from api.auth import check_order
from api.errors import ApiError
from api.idempotency import request_key
from api.intake import initial_view
from models import orders_repo
from models.api_keys import Caller
from models.order import OrderView
from workflows.contract import OrderInput


async def current_view(session: AsyncSession, client: Client, order_id: str) -> OrderView:
    """The order as last recorded, with the links kept in the read model (reorders) and the
    customer's other open orders."""
    view = await _recorded_or_live(session, client, order_id)
    for link in await orders_repo.links_of(session, order_id, view.customer.id):
        if link not in view.related:
            view.related.append(link)
    return view


async def _recorded_or_live(session: AsyncSession, client: Client, order_id: str) -> OrderView:
    """From the read model, which every step of an order's workflow writes before the step
    completes (and an edit before it answers): what it shows is the order less, at most, the
    step in progress. Asking the workflow instead would queue behind that very step in a busy
    worker. Only an order accepted but not recorded yet is asked of its workflow."""
    stored = await orders_repo.load_view(session, order_id)
    if stored is not None:
        return stored
    intake = await orders_repo.find_intake_by_order(session, order_id)
    # Give the connection back before waiting on Temporal: a slow query must not starve
    # the pool the worker's activities also draw from.
    await session.close()
    live = await order_calls.query_view(client, order_id)
    if live is not None:
        return live
    if intake is None:
        # Not placed through the API, not recorded, not running: unknown.
        raise ApiError(404, "order_not_found", f"no order {order_id}")
    # Accepted, and the workflow cannot answer this instant (its first task is still to run).
    return initial_view(OrderInput.model_validate(intake.workflow_input))


async def update_order(
    session: AsyncSession,
    client: Client,
    caller: Caller,
    order_id: str,
    name: str,
    req: object,
    update_id: str | None = None,
) -> OrderView:
    """Run a validated update on an order the caller may see; 404 for any other. Under an
    Idempotency-Key (or a console form's key) the update's id is the key's, so a retry joins
    the update already sent."""
    await check_order(session, caller, order_id)
    return await order_calls.run_update(
        client, order_id, name, req, update_id=update_id or request_key()
    )
