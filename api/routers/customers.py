"""Customers: the whole picture in one call, staff notes, and ratings of orders (§6, §7)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.auth import STAFF, ActorDep, CallerDep, check_customer, check_order
from api.deps import SessionDep, SessionsDep
from api.errors import ApiError, error_responses
from api.schemas import FeedbackBody, NoteBody
from models import customers_repo
from models.api_keys import Caller
from models.tables import Order

router = APIRouter(tags=["customers"])


@router.get("/customers/{customer_id}")
async def customer_picture(
    customer_id: str, session: SessionDep, caller: CallerDep
) -> dict[str, Any]:
    """Profile, addresses, every order with its status, open returns, lifetime value, loyalty
    points, the communication log (emails and staff notes) and the customer's ratings.

    A customer key sees its own picture, without staff notes."""
    return await picture_for(session, caller, customer_id)


async def picture_for(session: AsyncSession, caller: Caller, customer_id: str) -> dict[str, Any]:
    """The customer's picture as `caller` may see it (the API and the console both show it)."""
    check_customer(caller, customer_id)
    picture = await customers_repo.customer_picture(session, customer_id)
    if picture is None:
        raise ApiError(404, "customer_not_found", f"no customer {customer_id}")
    if caller.customer_id is not None:
        picture["communication"] = [e for e in picture["communication"] if e["type"] != "note"]
    return picture


@router.post("/customers/{customer_id}/notes", status_code=201, dependencies=[STAFF])
async def add_note(
    customer_id: str, body: NoteBody, sessions: SessionsDep, actor: ActorDep
) -> dict[str, Any]:
    """Add a staff note to the customer's communication log."""
    return await record_note(sessions, customer_id, actor, body)


async def record_note(
    sessions: async_sessionmaker[AsyncSession], customer_id: str, actor: str, body: NoteBody
) -> dict[str, Any]:
    """Keep a staff note about a known customer (and one of their own orders, if it names one);
    the API and the console both add notes through here."""
    async with sessions.begin() as session:
        if await customers_repo.customer_picture(session, customer_id) is None:
            raise ApiError(404, "customer_not_found", f"no customer {customer_id}")
        if body.order_id is not None:
            order = await session.get(Order, body.order_id)
            if order is None or order.customer_id != customer_id:
                raise ApiError(
                    422, "unknown_order", f"{body.order_id} is not an order of {customer_id}"
                )
        return await customers_repo.add_note(session, customer_id, actor, body.text, body.order_id)


@router.post("/orders/{order_id}/feedback", status_code=201, responses=error_responses(409))
async def rate_order(
    order_id: str, body: FeedbackBody, sessions: SessionsDep, caller: CallerDep
) -> dict[str, Any]:
    """The customer rates an order they received; a new rating replaces the old one."""
    async with sessions.begin() as session:
        await check_order(session, caller, order_id)
        order = await session.get(Order, order_id)
        if order is None:
            raise ApiError(404, "order_not_found", f"no order {order_id}")
        if order.status not in customers_repo.RATEABLE:
            raise ApiError(
                409, "not_delivered", f"{order_id} is {order.status}; rate it once it has arrived"
            )
        await customers_repo.rate_order(
            session, order_id, order.customer_id, body.rating, body.comment
        )
    return {"order_id": order_id, "rating": body.rating, "comment": body.comment}
