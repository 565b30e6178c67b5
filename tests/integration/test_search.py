"""Searching the read model by every dimension of §6, sorted and paged (PostgreSQL only)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from models import orders_repo
from models.order import (
    Address,
    Channel,
    Customer,
    OrderLine,
    OrderView,
    PaymentMethod,
)
from models.status import OrderStatus
from tests.integration.helpers import usd_totals

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _view(
    n: int, tag: str, sku: str, *, name: str, phone: str, total: str, status: str, channel: str
) -> OrderView:
    amount = Decimal(total)
    return OrderView(
        order_id=f"SO-{tag}-{n:04d}",
        status=OrderStatus(status),
        customer=Customer(
            id=f"C-{tag}-{n % 2}",
            name=name,
            email=f"{name.split()[0].lower()}@{tag}.example",
            phone=phone,
        ),
        channel=Channel(channel),
        channel_order_id=f"MKT-{tag}-{n}",
        ship_to=Address(name=name, line1="1 Road", city="Town", postal_code="1", country="CN"),
        payment_method=PaymentMethod.CARD,
        lines=[OrderLine(sku=sku, name="x", quantity=1, unit_price=amount, line_total=amount)],
        totals=usd_totals(amount),
        created_at=T0 + timedelta(days=n),
        updated_at=T0 + timedelta(days=n),
    )


async def test_every_search_dimension(make_stack) -> None:
    stack = await make_stack(start_worker=False)
    tag = uuid.uuid4().hex[:6].upper()
    teapot, mug = f"SKU-P-{tag}", f"SKU-M-{tag}"
    async with stack.sessions.begin() as s:
        for sku, pname in ((teapot, f"Celadon teapot {tag}"), (mug, f"Stoneware mug {tag}")):
            await s.execute(
                text(
                    "insert into products (sku, name, variant, category, unit_price, currency,"
                    " active) values (:s, :n, '', 'kitchen', 10, 'USD', true)"
                ),
                {"s": sku, "n": pname},
            )
        rows = [
            (1, teapot, "Ada Lovelace", "+44 20 7946 0001", "25.00", "COMPLETED", "web"),
            (2, mug, "Grace Hopper", "+1 212 555 0102", "8.50", "CANCELLED", "mobile"),
            (3, teapot, "Ada Byron", "+44 20 7946 0003", "120.00", "SHIPPED", "marketplace"),
            (4, mug, "Alan Turing", "+44 161 496 0004", "60.00", "COMPLETED", "phone"),
            (5, mug, "Grace 100% Brewster", "+1 212 555 0105", "60.00", "CONFIRMED", "web"),
        ]
        for n, sku, name, phone, total, status, channel in rows:
            view = _view(
                n, tag, sku, name=name, phone=phone, total=total, status=status, channel=channel
            )
            await orders_repo.save_view(s, view, 1)

    async def ids(**params: Any) -> list[int]:
        r = await stack.api.get("/orders", params={"limit": 50, **params})
        assert r.status_code == 200, r.text
        return [int(o["order_id"][-4:]) for o in r.json()["items"] if tag in o["order_id"]]

    assert await ids(q=f"SO-{tag}-0003") == [3]
    assert await ids(q=f"MKT-{tag}-4") == [4]
    assert await ids(customer_id=f"C-{tag}-1") == [5, 3, 1]
    assert await ids(customer_name="ada", q=tag) == [3, 1]
    assert await ids(customer_email=f"grace@{tag}") == [5, 2]
    assert await ids(customer_phone="7946", q=tag) == [3, 1]
    assert await ids(sku=mug) == [5, 4, 2]
    assert await ids(product=f"celadon teapot {tag}".lower()) == [3, 1]
    assert await ids(product=teapot.lower()) == [3, 1]
    assert await ids(q=f"Stoneware mug {tag}") == [5, 4, 2]
    assert await ids(q=tag, status="COMPLETED") == [4, 1]
    assert await ids(q=tag, channel="web") == [5, 1]
    window = {
        "created_from": (T0 + timedelta(days=2)).isoformat(),
        "created_to": (T0 + timedelta(days=4)).isoformat(),
    }
    assert await ids(q=tag, **window) == [3, 2]
    assert await ids(q=tag, total_min="25", total_max="60") == [5, 4, 1]
    # Wildcards a user types are matched as themselves.
    assert await ids(customer_name="100%") == [5]
    assert await ids(customer_name="_race", q=tag) == []

    # Sorted by amount, paged with a cursor; ties broken by order number.
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"q": tag, "sort": "total_desc", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await stack.api.get("/orders", params=params)).json()
        seen += [int(o["order_id"][-4:]) for o in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [3, 5, 4, 1, 2]
    assert await ids(q=tag, sort="oldest") == [1, 2, 3, 4, 5]
    assert await ids(q=tag, sort="total_asc") == [2, 1, 4, 5, 3]

    first = (await stack.api.get("/orders", params={"q": tag, "limit": 1})).json()
    r = await stack.api.get(
        "/orders", params={"q": tag, "sort": "total_asc", "cursor": first["next_cursor"]}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_cursor"
    for bad in ({"sort": "cheapest"}, {"total_min": "-1"}, {"q": "x"}):
        assert (await stack.api.get("/orders", params=bad)).status_code == 422


async def test_names_many_orders_share_are_found_the_same_way(make_stack, monkeypatch) -> None:
    stack = await make_stack(start_worker=False)
    tag = uuid.uuid4().hex[:6].upper()
    async with stack.sessions.begin() as s:
        for n, name in enumerate(["Ada Lovelace", "Ada Byron", "Alan Turing", "Ada Lovelace"]):
            view = _view(
                n,
                tag,
                f"SKU-{tag}",
                name=name,
                phone="",
                total="1",
                status="CONFIRMED",
                channel="web",
            )
            await orders_repo.save_view(s, view, 1)

    async def ids(**params: Any) -> list[int]:
        r = await stack.api.get("/orders", params={"limit": 50, "q": tag, **params})
        assert r.status_code == 200, r.text
        return [int(o["order_id"][-4:]) for o in r.json()["items"]]

    # Few names match: their orders are fetched by name. Many: the orders are walked.
    assert await ids(customer_name="ADA") == [3, 1, 0]
    monkeypatch.setattr(orders_repo, "NAMES_LISTED", 1)
    assert await ids(customer_name="ADA") == [3, 1, 0]
    assert await ids(customer_name="lovelace") == [3, 0]
    monkeypatch.undo()
    # A name changed on an order is searchable by its new spelling at once.
    await stack.sql(
        "update orders set customer_name = 'Ada King' where order_id = :o", o=f"SO-{tag}-0001"
    )
    assert await ids(customer_name="king") == [1]
    assert await ids(customer_name="byron") == []
