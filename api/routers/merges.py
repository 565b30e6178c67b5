"""Merged shipments: staff ship a customer's open orders to one address as one parcel (§4)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from fastapi import APIRouter

from api import order_calls
from api.auth import ActorDep
from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import ApiError, error_responses
from api.intake import policy_from
from api.order_actions import current_view
from api.schemas import MergeBody
from models.order_number import make_order_number
from models.status import OrderStatus
from workflows import contract as c

router = APIRouter(tags=["merges"])
S = OrderStatus
PICKED = {S.PICKING, S.PACKED, S.PARTIALLY_SHIPPED, S.SHIPPED, S.DELIVERED, S.COMPLETED}


@router.post(
    "/merges",
    status_code=201,
    response_model=c.ConsolidationView,
    # 404 for an order that does not exist, 409 for orders that may not be merged.
    responses=error_responses(404, 409),
)
async def merge_orders(
    body: MergeBody,
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
    actor: ActorDep,
) -> c.ConsolidationView:
    """Merge open orders of one customer to one address into one parcel, before picking."""
    views = [await current_view(session, client, oid) for oid in body.order_ids]
    first = views[0]
    for v in views[1:]:
        if v.customer.id != first.customer.id:
            raise ApiError(
                409,
                "merge_different_customers",
                f"{v.order_id} belongs to {v.customer.id}, {first.order_id} to {first.customer.id}",
            )
        if v.ship_to != first.ship_to:
            raise ApiError(
                409,
                "merge_different_addresses",
                f"{v.order_id} and {first.order_id} ship to different addresses",
            )
    for v in views:
        if v.status in PICKED:
            raise ApiError(409, "merge_already_picked", f"{v.order_id} is {v.status}")
        if v.status != S.CONFIRMED:
            raise ApiError(
                409, "merge_not_open", f"{v.order_id} is {v.status}; only confirmed orders merge"
            )
    number = make_order_number(datetime.now(UTC), secrets.randbits(13), prefix="CN")
    inp = c.ConsolidationInput(
        consolidation_id=number,
        customer_id=first.customer.id,
        ship_to=first.ship_to,
        order_ids=body.order_ids,
        actor=actor,
        reason=body.note,
        policy=policy_from(settings),
    )
    view = await order_calls.start_consolidation(client, settings.task_queue, inp)
    if view.status == "dissolved":
        reasons = "; ".join(f"{m.order_id}: {m.reason}" for m in view.members if m.reason)
        raise ApiError(409, "merge_not_formed", f"the orders could not be merged: {reasons}")
    return view


@router.get("/merges/{consolidation_id}", response_model=c.ConsolidationView)
async def get_merge(consolidation_id: str, client: TemporalDep) -> c.ConsolidationView:
    """A merged shipment with its orders and parcel."""
    if not consolidation_id.startswith("CN-"):
        raise ApiError(404, "merge_not_found", f"no merged shipment {consolidation_id}")
    view = await order_calls.query_consolidation(client, consolidation_id)
    if view is None:
        raise ApiError(404, "merge_not_found", f"no merged shipment {consolidation_id}")
    return view
