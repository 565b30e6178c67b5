"""Orders: create, read, search, modify, cancel (§11)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api import order_calls
from api.auth import STAFF, ActorDep, CallerDep, check_customer, check_order
from api.deps import SessionDep, SessionsDep, SettingsDep, TemporalDep
from api.errors import ApiError, error_responses
from api.idempotency import request_key
from api.intake import create_order
from api.order_actions import current_view, update_order
from api.preconditions import PreconditionDep, etag
from api.schemas import (
    ExceptionActionBody,
    IsoDateTime,
    OrderCancel,
    OrderCreate,
    OrderModify,
    PaymentBody,
    PaymentMethodBody,
    RefundSettledBody,
    ReorderBody,
    ReturnBody,
    ReviewBody,
    SplitBody,
)
from models import orders_repo
from models.order import Channel, LineInput, OrderView
from models.status import OrderStatus
from models.tables import Warehouse
from workflows import contract as c

router = APIRouter(tags=["orders"])

OrderIdPath = Annotated[str, "order number"]


@router.post("/orders", status_code=201, response_model=OrderView)
async def post_order(
    body: OrderCreate,
    response: Response,
    sessions: SessionsDep,
    client: TemporalDep,
    settings: SettingsDep,
    actor: ActorDep,
    caller: CallerDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> OrderView:
    """Place an order; the same Idempotency-Key (or channel order id) returns the same order."""
    check_customer(caller, body.customer.id)
    view, created = await create_order(
        sessions, client, settings, body, idempotency_key, actor, principal=caller.key_id
    )
    if created:
        response.headers["Location"] = f"/orders/{view.order_id}"
        return view
    response.status_code = 200
    response.headers["Idempotent-Replayed"] = "true"
    async with sessions() as session:
        return await current_view(session, client, view.order_id)


@router.post("/orders/{order_id}/reorder", status_code=201, response_model=OrderView)
async def reorder(
    order_id: str,
    body: ReorderBody,
    response: Response,
    sessions: SessionsDep,
    client: TemporalDep,
    settings: SettingsDep,
    actor: ActorDep,
    caller: CallerDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> OrderView:
    """Place the same lines again for the same customer (priced anew), linked both ways."""
    async with sessions() as session:
        await check_order(session, caller, order_id)
        old = await current_view(session, client, order_id)
    new_body = OrderCreate(
        customer=old.customer,
        channel=old.channel,
        lines=[LineInput(sku=ln.sku, quantity=ln.quantity) for ln in old.lines],
        ship_to=body.ship_to or old.ship_to,
        bill_to=old.bill_to,
        delivery=body.delivery or old.delivery,
        payment=body.payment,
        notes=f"reorder of {order_id}",
    )
    view, created = await create_order(
        sessions, client, settings, new_body, idempotency_key, actor, principal=caller.key_id
    )
    async with sessions.begin() as session:
        await orders_repo.link_orders(session, view.order_id, "reorder_of", order_id)
    if not created:
        response.status_code = 200
    view.related.append({"type": "reorder_of", "id": order_id})
    return view


@router.get("/orders/{order_id}", response_model=OrderView)
async def get_order(
    order_id: str,
    session: SessionDep,
    client: TemporalDep,
    caller: CallerDep,
    response: Response,
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Any:
    """The order with its lines, totals, payments, shipments and history; its ETag is its
    version, for If-Match on edits (and If-None-Match here: 304 when unchanged)."""
    await check_order(session, caller, order_id)
    view = await current_view(session, client, order_id)
    tag = etag(view)
    if if_none_match is not None and tag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=304, headers={"ETag": tag})
    response.headers["ETag"] = tag
    return view


@router.get("/orders", responses=error_responses(400))
async def list_orders(
    session: SessionDep,
    caller: CallerDep,
    customer_id: Annotated[str | None, Query(max_length=64)] = None,
    customer_name: Annotated[str | None, Query(min_length=2, max_length=100)] = None,
    customer_email: Annotated[str | None, Query(min_length=2, max_length=200)] = None,
    customer_phone: Annotated[str | None, Query(min_length=2, max_length=64)] = None,
    status: OrderStatus | None = None,
    sku: Annotated[str | None, Query(max_length=64)] = None,
    product: Annotated[str | None, Query(min_length=2, max_length=100)] = None,
    channel: Channel | None = None,
    created_from: IsoDateTime | None = None,
    created_to: IsoDateTime | None = None,
    total_min: Annotated[Decimal | None, Query(ge=0, le=10**9)] = None,
    total_max: Annotated[Decimal | None, Query(ge=0, le=10**9)] = None,
    q: Annotated[str | None, Query(min_length=2, max_length=100)] = None,
    sort: Literal["newest", "oldest", "total_desc", "total_asc"] = "newest",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> dict[str, Any]:
    """Search the read model by any mix of filters, sorted, one page at a time.

    `customer_name`, `customer_email`, `customer_phone`, `product` (SKU or product name) and
    `q` (any of those, the order number or the channel's order id) match partly. A customer
    key sees its own orders only.
    """
    if caller.customer_id is not None:
        check_customer(caller, customer_id or caller.customer_id)
        customer_id = caller.customer_id
    f = orders_repo.OrderFilter(
        customer_id=customer_id,
        customer_name=customer_name,
        customer_email=customer_email,
        customer_phone=customer_phone,
        status=status.value if status else None,
        sku=sku,
        product=product,
        channel=channel.value if channel else None,
        created_from=created_from,
        created_to=created_to,
        total_min=total_min,
        total_max=total_max,
        q=q,
        sort=sort,
    )
    return await _page(session, f, limit, cursor)


async def _page(
    session: AsyncSession, f: orders_repo.OrderFilter, limit: int, cursor: str | None
) -> dict[str, Any]:
    try:
        items, next_cursor = await orders_repo.search_orders(session, f, limit, cursor)
    except ValueError as exc:
        raise ApiError(400, "invalid_cursor", str(exc)) from None
    return {"items": items, "next_cursor": next_cursor}


@router.get("/customers/{customer_id}/orders", responses=error_responses(400))
async def customer_orders(
    customer_id: str,
    session: SessionDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> dict[str, Any]:
    """Every order of one customer with its current status."""
    check_customer(caller, customer_id)
    return await _page(session, orders_repo.OrderFilter(customer_id=customer_id), limit, cursor)


@router.patch("/orders/{order_id}", response_model=OrderView, responses=error_responses(409, 412))
async def patch_order(
    order_id: str,
    body: OrderModify,
    session: SessionDep,
    client: TemporalDep,
    actor: ActorDep,
    caller: CallerDep,
    pre: PreconditionDep,
) -> OrderView:
    """Change address, contact or lines: 200 with the new view, or 409 with the rule; with
    If-Match, 412 when the order changed since that version."""
    if body.ship_to is None and body.contact is None and body.lines is None:
        raise ApiError(422, "nothing_to_change", "give ship_to, contact or lines")
    contact = c.Contact(**body.contact.model_dump()) if body.contact else None
    req = c.ModifyRequest(
        ship_to=body.ship_to,
        contact=contact,
        lines=body.lines,
        actor=actor,
        expected_version=pre.expected,
    )
    return pre.answer(await update_order(session, client, caller, order_id, c.UPDATE_MODIFY, req))


@router.post(
    "/orders/{order_id}/cancel", response_model=OrderView, responses=error_responses(409, 412)
)
async def cancel_order(
    order_id: str,
    body: OrderCancel,
    session: SessionDep,
    client: TemporalDep,
    actor: ActorDep,
    caller: CallerDep,
    pre: PreconditionDep,
) -> OrderView:
    """Cancel with compensation: 200, or 409 with the reason it is refused."""
    req = c.CancelRequest(reason=body.reason, actor=actor, expected_version=pre.expected)
    return pre.answer(await update_order(session, client, caller, order_id, c.UPDATE_CANCEL, req))


@router.post(
    "/orders/{order_id}/review",
    response_model=OrderView,
    dependencies=[STAFF],
    responses=error_responses(409, 412),
)
async def review_order(
    order_id: str,
    body: ReviewBody,
    session: SessionDep,
    client: TemporalDep,
    actor: ActorDep,
    caller: CallerDep,
    pre: PreconditionDep,
) -> OrderView:
    """Staff approve or reject an order held for review."""
    req = c.ReviewDecision(
        decision=body.decision, note=body.note, actor=actor, expected_version=pre.expected
    )
    return pre.answer(await update_order(session, client, caller, order_id, c.UPDATE_REVIEW, req))


@router.post(
    "/orders/{order_id}/split",
    response_model=OrderView,
    dependencies=[STAFF],
    responses=error_responses(409, 412),
)
async def split_order(
    order_id: str,
    body: SplitBody,
    session: SessionDep,
    client: TemporalDep,
    actor: ActorDep,
    caller: CallerDep,
    pre: PreconditionDep,
) -> OrderView:
    """Staff split the order's lines into parcels before picking; each ships on its own."""
    await check_order(session, caller, order_id)
    for p in body.parcels:
        if p.warehouse_id is not None and await session.get(Warehouse, p.warehouse_id) is None:
            raise ApiError(422, "unknown_warehouse", f"no warehouse {p.warehouse_id}")
    req = c.SplitRequest(
        parcels=[c.ParcelSplit(warehouse_id=p.warehouse_id, lines=p.lines) for p in body.parcels],
        note=body.note,
        actor=actor,
        expected_version=pre.expected,
    )
    return pre.answer(
        await order_calls.run_update(client, order_id, c.UPDATE_SPLIT, req, update_id=request_key())
    )


@router.post(
    "/orders/{order_id}/payments",
    response_model=OrderView,
    dependencies=[STAFF],
    responses=error_responses(409, 412),
)
async def post_payment(
    order_id: str,
    body: PaymentBody,
    session: SessionDep,
    client: TemporalDep,
    actor: ActorDep,
    caller: CallerDep,
    pre: PreconditionDep,
) -> OrderView:
    """Record money received for a pay-later order (bank transfer, invoice)."""
    if body.currency is not None:
        await check_order(session, caller, order_id)
        wanted = (await current_view(session, client, order_id)).totals.currency
        if body.currency != wanted:
            raise ApiError(
                422, "currency_mismatch", f"the order is in {wanted}, not {body.currency}"
            )
    req = c.PaymentReceived(
        amount=body.amount, reference=body.reference, actor=actor, expected_version=pre.expected
    )
    return pre.answer(await update_order(session, client, caller, order_id, c.UPDATE_PAYMENT, req))


@router.put(
    "/orders/{order_id}/payment-method",
    response_model=OrderView,
    responses=error_responses(409, 412),
)
async def put_payment_method(
    order_id: str,
    body: PaymentMethodBody,
    session: SessionDep,
    client: TemporalDep,
    actor: ActorDep,
    caller: CallerDep,
    pre: PreconditionDep,
) -> OrderView:
    """Send a new card or wallet after a decline."""
    req = c.PaymentMethodChange(
        method=body.method, token=body.token, actor=actor, expected_version=pre.expected
    )
    return pre.answer(
        await update_order(session, client, caller, order_id, c.UPDATE_PAYMENT_METHOD, req)
    )


@router.post(
    "/orders/{order_id}/exception-actions",
    response_model=OrderView,
    dependencies=[STAFF],
    responses=error_responses(409, 412),
)
async def post_exception_action(
    order_id: str,
    body: ExceptionActionBody,
    session: SessionDep,
    client: TemporalDep,
    actor: ActorDep,
    caller: CallerDep,
    pre: PreconditionDep,
) -> OrderView:
    """Reship, refund, or contact the customer about a carrier exception."""
    req = c.ExceptionAction(
        action=body.action, note=body.note, actor=actor, expected_version=pre.expected
    )
    return pre.answer(
        await update_order(session, client, caller, order_id, c.UPDATE_EXCEPTION_ACTION, req)
    )


@router.post(
    "/orders/{order_id}/refunds",
    response_model=OrderView,
    dependencies=[STAFF],
    responses=error_responses(409, 412),
)
async def post_refund(
    order_id: str,
    body: RefundSettledBody,
    session: SessionDep,
    client: TemporalDep,
    actor: ActorDep,
    caller: CallerDep,
    pre: PreconditionDep,
) -> OrderView:
    """Record money sent back by hand (an overpayment by transfer, say): the payment is marked
    refunded and its alert resolved; 409 when nothing is due back on it."""
    req = c.RefundSettled(
        payment_id=body.payment_id,
        reference=body.reference,
        note=body.note,
        actor=actor,
        expected_version=pre.expected,
    )
    return pre.answer(
        await update_order(session, client, caller, order_id, c.UPDATE_SETTLE_REFUND, req)
    )


@router.post(
    "/orders/{order_id}/returns", response_model=OrderView, responses=error_responses(409, 412)
)
async def post_return(
    order_id: str,
    body: ReturnBody,
    session: SessionDep,
    client: TemporalDep,
    actor: ActorDep,
    caller: CallerDep,
    pre: PreconditionDep,
) -> OrderView:
    """Ask to return delivered lines, for a refund or an exchange; 409 with the rule if not."""
    if body.kind == "exchange" and not body.exchange_lines:
        raise ApiError(422, "exchange_lines_missing", "an exchange names the goods wanted")
    await check_order(session, caller, order_id)
    req = c.ReturnRequest(
        lines=body.lines,
        reason=body.reason,
        evidence=body.evidence,
        kind=body.kind,
        exchange_lines=body.exchange_lines,
        actor=actor,
        expected_version=pre.expected,
    )
    try:
        return pre.answer(
            await order_calls.run_update(
                client, order_id, c.UPDATE_REQUEST_RETURN, req, update_id=request_key()
            )
        )
    except ApiError as exc:
        if exc.code != "closed":
            raise
        # The order's workflow ends when its after-sales window does.
        raise ApiError(409, "outside_return_window", "the after-sales window is closed") from None


@router.get("/orders/{order_id}/messages")
async def order_messages(order_id: str, session: SessionDep, caller: CallerDep) -> dict[str, Any]:
    """Every email written about the order, with whether and when it was sent."""
    await check_order(session, caller, order_id)
    return {"items": await orders_repo.communication_log(session, order_id)}
