"""Order intake: price on the server, claim the idempotency keys, start the workflow."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api import order_calls
from api.errors import ApiError
from api.schemas import OrderCreate
from models import catalog_repo, orders_repo
from models.order import DeliveryOption, LineInput, OrderView, PricedOrder
from models.order_number import make_order_number
from models.pricing import DeliveryNotOffered, PricingError, price_order
from orderflow.settings import Settings
from workflows.contract import OrderInput, OrderPolicy, placed_view


def request_hash(body: OrderCreate) -> str:
    """A fingerprint of what was asked, to tell a retry from a different request."""
    asked = body.model_dump(mode="json")
    # Standard delivery hashes as requests did before the option existed, so a client's
    # retry across that change is still recognised as the same request.
    if asked["delivery"] == DeliveryOption.STANDARD:
        del asked["delivery"]
    raw = json.dumps(asked, sort_keys=True).encode()
    return hashlib.sha256(raw).hexdigest()


def intake_keys(body: OrderCreate, idempotency_key: str | None, principal: str = "") -> list[str]:
    """The keys under which this request must be unique."""
    keys = []
    if idempotency_key:
        # A caller's keys are its own: the same key from another caller is another request.
        keys.append(f"idem:{principal}:{idempotency_key}")
    # The same channel order is the same order, whoever sends it.
    if body.channel_order_id:
        keys.append(f"channel:{body.channel.value}:{body.channel_order_id}")
    return keys


def policy_from(settings: Settings) -> OrderPolicy:
    """The timer lengths an order is started with."""
    return OrderPolicy.model_validate(settings.model_dump(include=set(OrderPolicy.model_fields)))


def initial_view(inp: OrderInput) -> OrderView:
    """The view of an order that has just been placed."""
    return placed_view(inp, inp.created_at)


async def price_lines(
    session: AsyncSession,
    lines: list[LineInput],
    country: str,
    promotion_code: str,
    delivery: DeliveryOption,
) -> PricedOrder:
    """Lines priced from the catalog and the country's rules, as an order is charged; 422 with
    the reason when they cannot be (intake, and the console's preview of a lines edit)."""
    catalog = await catalog_repo.load_catalog(session, [ln.sku for ln in lines])
    rules = await catalog_repo.load_rules(session, country, promotion_code)
    if promotion_code and rules.promotion is None:
        raise ApiError(422, "unknown_promotion", f"promotion code {promotion_code!r} is not valid")
    try:
        return price_order(lines, catalog, rules, delivery)
    except PricingError as exc:
        raise ApiError(422, "invalid_lines", str(exc), exc.details) from None
    except DeliveryNotOffered as exc:
        raise ApiError(
            422,
            "delivery_not_offered",
            str(exc),
            {"delivery": exc.delivery.value, "country": exc.country},
        ) from None


async def _price(session: AsyncSession, body: OrderCreate) -> OrderInput:
    priced = await price_lines(
        session, body.lines, body.ship_to.country, body.promotion_code, body.delivery
    )
    now = datetime.now(UTC)
    return OrderInput(
        order_id=make_order_number(now, secrets.randbits(16)),
        customer=body.customer,
        channel=body.channel,
        channel_order_id=body.channel_order_id,
        ship_to=body.ship_to,
        bill_to=body.bill_to,
        allow_partial_shipment=body.allow_partial_shipment,
        payment=body.payment,
        priced=priced,
        delivery=body.delivery,
        promotion_code=body.promotion_code,
        notes=body.notes,
        created_at=now,
    )


async def create_order(
    sessions: async_sessionmaker[AsyncSession],
    client: Client,
    settings: Settings,
    body: OrderCreate,
    idempotency_key: str | None,
    actor: str,
    principal: str = "",
) -> tuple[OrderView, bool]:
    """Create the order, or find the one an earlier identical request created.

    `principal` is the caller's key id, whose Idempotency-Keys these are. Returns the view and
    whether it is new.
    """
    keys = intake_keys(body, idempotency_key, principal)
    fingerprint = request_hash(body)
    async with sessions() as session:
        existing = await _existing(session, keys, fingerprint)
        if existing is None and idempotency_key:
            existing = await _placed_while_keys_were_global(
                session, idempotency_key, fingerprint, actor, settings.idempotency_ttl_seconds
            )
        if existing is not None:
            inp = OrderInput.model_validate(existing)
            # The first attempt may have died between claiming the key and starting.
            await order_calls.start_order(client, settings.task_queue, inp)
            return initial_view(inp), False

        inp = await _price(session, body)
        inp.actor = actor
        inp.policy = policy_from(settings)
        stored = inp.model_dump(mode="json")
        try:
            # The order's own key always exists: it is how the API knows the order number.
            for key in [*keys, f"order:{inp.order_id}"]:
                row = await orders_repo.claim_intake(
                    session, key, inp.order_id, fingerprint, stored
                )
                if row.order_id != inp.order_id:
                    # A concurrent identical request claimed the key first: it wins.
                    await session.rollback()
                    return await create_order(
                        sessions, client, settings, body, idempotency_key, actor, principal
                    )
            await session.commit()
        except IntegrityError:
            await session.rollback()
            return await create_order(
                sessions, client, settings, body, idempotency_key, actor, principal
            )
    await order_calls.start_order(client, settings.task_queue, inp)
    return initial_view(inp), True


async def _existing(
    session: AsyncSession, keys: list[str], fingerprint: str
) -> dict[str, object] | None:
    for key in keys:
        row = await orders_repo.find_intake(session, key)
        if row is None:
            continue
        if key.startswith("idem:") and row.request_hash != fingerprint:
            raise ApiError(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
                {"order_id": row.order_id},
            )
        return row.workflow_input
    return None


async def _placed_while_keys_were_global(
    session: AsyncSession, idempotency_key: str, fingerprint: str, actor: str, ttl_seconds: float
) -> dict[str, object] | None:
    """The order that this very request placed when keys were one space for every caller
    (`idem:<key>`, before they became per caller), so that a retry across that change finds
    it. Only the same request from the same actor within the keys' lifetime counts; any other
    use of such a key belongs to someone else and is ignored, never refused nor shown."""
    row = await orders_repo.find_intake(session, f"idem:{idempotency_key}")
    if (
        row is None
        or row.request_hash != fingerprint
        or row.workflow_input.get("actor") != actor
        or row.created_at < datetime.now(UTC) - timedelta(seconds=ttl_seconds)
    ):
        return None
    return row.workflow_input
