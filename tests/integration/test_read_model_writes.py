"""The read model's write rules: unchanged parts are not rewritten, a newer task's write wins
over a lost one's, a stale write changes nothing (PostgreSQL only)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from models import orders_repo
from models.order import (
    Address,
    Channel,
    Customer,
    HistoryEntry,
    OrderLine,
    OrderView,
    PaymentMethod,
    PaymentRecord,
    ShipmentRecord,
)
from models.status import OrderStatus
from tests.integration.helpers import usd_totals

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def _view(order_id: str, quantity: int, payment_status: str) -> OrderView:
    price = Decimal("10.00")
    total = price * quantity
    return OrderView(
        order_id=order_id,
        status=OrderStatus.CONFIRMED,
        customer=Customer(id="C-RM", name="Read Model", email="rm@example.com"),
        channel=Channel.WEB,
        ship_to=Address(name="R M", line1="1 Road", city="Town", postal_code="1", country="CN"),
        payment_method=PaymentMethod.CARD,
        lines=[
            OrderLine(sku="SKU-RM", name="x", quantity=quantity, unit_price=price, line_total=total)
        ],
        totals=usd_totals(total),
        payments=[
            PaymentRecord(
                authorization_id=f"auth-{order_id}",
                amount=total,
                currency="USD",
                status=payment_status,
            )
        ],
        shipments=[
            ShipmentRecord(
                shipment_id=f"shp-{order_id}",
                tracking_number="T1",
                warehouse="WH-1",
                status="booked",
            )
        ],
        created_at=T0,
        updated_at=T0,
    )


def _entries(first: int, last: int, detail: str) -> list[HistoryEntry]:
    return [
        HistoryEntry(
            seq=n, at=T0, kind="note", actor="test", status=OrderStatus.CONFIRMED, detail=detail
        )
        for n in range(first, last + 1)
    ]


async def _stored(stack: Any, order_id: str) -> dict[str, Any]:
    one = {"o": order_id}
    lines = await stack.sql("select sku, quantity from order_lines where order_id=:o", **one)
    pays = await stack.sql("select status from payments where order_id=:o", **one)
    events = await stack.sql(
        "select seq, detail from order_events where order_id=:o order by seq", **one
    )
    return {
        "lines": [tuple(r) for r in lines],
        "payments": [r[0] for r in pays],
        "events": [tuple(r) for r in events],
    }


async def _save(stack: Any, view: OrderView, seq: int, version: int) -> bool:
    async with stack.sessions.begin() as s:
        return await orders_repo.save_view(s, view, seq, version)


async def test_writes_keep_tables_equal_to_the_winning_view(make_stack) -> None:
    stack = await make_stack(start_worker=False)
    oid = f"SO-RM-{uuid.uuid4().hex[:8].upper()}"

    first = _view(oid, 2, "authorized")
    first.history = _entries(1, 3, "a")
    assert await _save(stack, first, 3, version=100)
    assert await _stored(stack, oid) == {
        "lines": [("SKU-RM", 2)],
        "payments": ["authorized"],
        "events": [(1, "a"), (2, "a"), (3, "a")],
    }

    # The same task writes again: new history, a changed payment, the same lines.
    second = _view(oid, 2, "captured")
    second.history = _entries(4, 5, "a")
    assert await _save(stack, second, 5, version=100)
    got = await _stored(stack, oid)
    assert got["payments"] == ["captured"] and got["lines"] == [("SKU-RM", 2)]
    assert [seq for seq, _ in got["events"]] == [1, 2, 3, 4, 5]

    # A task that is then lost writes a changed line and two entries ...
    lost = _view(oid, 5, "captured")
    lost.history = _entries(6, 7, "lost")
    assert await _save(stack, lost, 7, version=200)
    assert (await _stored(stack, oid))["lines"] == [("SKU-RM", 5)]

    # ... and its retry, which started later, decides otherwise: its write replaces the lost
    # one's lines and history although its sequence number is smaller.
    retry = _view(oid, 2, "captured")
    retry.history = _entries(6, 6, "retry")
    assert await _save(stack, retry, 6, version=300)
    got = await _stored(stack, oid)
    assert got["lines"] == [("SKU-RM", 2)]
    assert got["events"][-2:] == [(5, "a"), (6, "retry")]

    # A write from before it is refused and changes nothing.
    stale = _view(oid, 9, "voided")
    stale.history = _entries(6, 8, "stale")
    assert not await _save(stack, stale, 8, version=250)
    assert await _stored(stack, oid) == got
    rows = await stack.sql("select last_seq, version from orders where order_id=:o", o=oid)
    assert tuple(rows[0]) == (6, 300)


async def test_the_first_write_clears_history_left_without_an_order_row(make_stack) -> None:
    stack = await make_stack(start_worker=False)
    oid = f"SO-RM-{uuid.uuid4().hex[:8].upper()}"
    await stack.sql(
        "insert into order_events (order_id, seq, at, kind, actor, status, detail)"
        " values (:o, 1, :at, 'note', 'test', 'CONFIRMED', 'orphan')",
        o=oid,
        at=T0,
    )
    view = _view(oid, 1, "authorized")
    view.history = _entries(1, 1, "kept")
    assert await _save(stack, view, 1, version=1)
    assert (await _stored(stack, oid))["events"] == [(1, "kept")]
