"""Reports (§8) over a seeded read model whose answers are worked out by hand below.

The orders sit in a random past fortnight of their own, so no other test's rows fall in it.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from models import orders_repo
from models.order import (
    Address,
    Channel,
    Customer,
    DeliveryOption,
    HistoryEntry,
    OrderLine,
    OrderView,
    PaymentMethod,
    Totals,
)
from models.status import OrderStatus
from orderflow.cli import main
from orderflow.staff_cli import REFUSED

D = Decimal
SVG_NS = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("b")</script>'


@dataclass
class Seeded:
    """The seeded period and the names a test looks for."""

    first: date
    last: date
    tag: str
    cat: str
    cat2: str
    sku: dict[str, str]

    @property
    def span(self) -> dict[str, str]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat()}


# key: (name, category 1 or 2, unit price, currency, active, on hand per warehouse)
PRODUCTS: dict[str, tuple[str, int, str, str, bool, dict[str, int]]] = {
    "A": ("Alpha", 1, "10.00", "USD", True, {"WH-SHA": 30, "WH-RTM": 10}),
    "B": (HOSTILE, 1, "5.00", "USD", True, {"WH-SHA": 10}),
    "C": ("Gamma", 2, "20.00", "USD", True, {"WH-SHA": 0}),
    "D": ("Delta", 1, "7.00", "USD", True, {"WH-SHA": 5}),
    "E": ("Epsilon", 1, "3.00", "USD", False, {}),
    "F": ("Phi", 2, "8.00", "EUR", True, {"WH-RTM": 4}),
}

# n: (day, minute of the day placed, channel, customer, payment, country, shipping, lines,
#     history as (minutes after placing, status), shipped units)
ORDERS: dict[str, tuple[Any, ...]] = {
    "O1": (0, 600, "web", 1, "card", "CN", "5.00", [("A", 2), ("B", 1)],
           [(0, "PLACED"), (10, "CONFIRMED"), (11, "CONFIRMED"), (70, "PICKING"),
            (100, "PACKED"), (160, "SHIPPED"), (1600, "DELIVERED"), (3040, "COMPLETED")]),
    "O2": (0, 900, "mobile", 2, "wallet", "CN", "0.00", [("A", 1), ("C", 1)],
           [(0, "PLACED"), (20, "CONFIRMED"), (50, "PICKING"), (60, "PACKED"),
            (120, "SHIPPED"), (1000, "DELIVERED")]),
    "O3": (1, 540, "web", 1, "card", "NL", "5.00", [("B", 3)],
           [(0, "PLACED"), (5, "PENDING_REVIEW"), (65, "CONFIRMED"), (105, "PICKING"),
            (115, "PACKED"), (175, "SHIPPED")]),
    "O4": (1, 720, "web", 3, "card", "CN", "5.00", [("A", 5), ("C", 1)],
           [(0, "PLACED"), (30, "CONFIRMED"), (100, "CANCELLED")]),
    "O5": (2, 600, "marketplace", 4, "bank_transfer", "CN", "5.00", [("C", 2)],
           [(0, "PLACED"), (2, "AWAITING_PAYMENT"), (62, "FAILED")]),
    "O6": (8, 600, "web", 2, "card", "CN", "0.00", [("A", 1), ("B", 2), ("C", 1)],
           [(0, "PLACED"), (40, "CONFIRMED"), (100, "PICKING"), (110, "PACKED"),
            (170, "SHIPPED"), (2000, "DELIVERED"), (2100, "RETURN_REQUESTED"),
            (2200, "RETURNED")]),
    "O7": (8, 700, "phone", 5, "invoice", "CN", "5.00", [("A", 1)],
           [(0, "PLACED"), (1, "AWAITING_PAYMENT")]),
    "O8": (9, 600, "web", 6, "card", "DE", "4.00", [("F", 2)],
           [(0, "PLACED"), (5, "CONFIRMED"), (25, "PICKING"), (35, "PACKED"),
            (95, "SHIPPED"), (995, "DELIVERED"), (2435, "COMPLETED")]),
    "O9": (9, 660, "web", 3, "card", "CN", "5.00", [("A", 1)],
           [(0, "PLACED"), (15, "CONFIRMED"), (35, "PICKING"), (45, "PACKED"),
            (105, "SHIPPED"), (1005, "DELIVERED"), (1100, "RETURN_REQUESTED"),
            (1150, "DELIVERED"), (1160, "RETURN_REQUESTED"), (1200, "REFUNDED")]),
    # Placed the second before the period, shipped inside it: only its shipment counts.
    "BEFORE": (-1, 1439, "web", 7, "card", "CN", "0.00", [("A", 3)],
               [(0, "PLACED"), (1000, "CONFIRMED"), (3000, "SHIPPED")]),
    # Placed the moment after the period.
    "AFTER": (10, 0, "web", 8, "card", "CN", "0.00", [("A", 50), ("B", 50)],
              [(0, "PLACED"), (1, "CONFIRMED"), (2, "SHIPPED")]),
}  # fmt: skip
SHIPPED = {"O1", "O2", "O3", "O6", "O8", "O9", "BEFORE", "AFTER"}
WITH_RETURN = ("O6", "O9")
# Express orders (the cancelled O4 is no sale); the rest are standard.
EXPRESS = {"O2", "O4", "O8"}
# Recorded before orders had a delivery option: their views have none, and count as standard.
WITHOUT_DELIVERY = {"O1", "O5"}


def _view(s: Seeded, n: str, first: date) -> OrderView:
    day, minute, channel, cust, method, country, shipping, lines, history = ORDERS[n]
    placed = datetime.combine(first, time(), UTC) + timedelta(days=day, minutes=minute)
    order_lines = [
        OrderLine(
            sku=s.sku[k],
            name=PRODUCTS[k][0],
            quantity=q,
            unit_price=D(PRODUCTS[k][2]),
            line_total=D(PRODUCTS[k][2]) * q,
        )
        for k, q in lines
    ]
    subtotal = sum((ln.line_total for ln in order_lines), D("0"))
    entries, before = [], None
    for i, (minutes, status) in enumerate(history, start=1):
        kind = "placed" if i == 1 else f"status:{status}" if status != before else "note"
        at = placed + timedelta(minutes=minutes)
        entries.append(
            HistoryEntry(seq=i, at=at, kind=kind, actor="system", status=OrderStatus(status))
        )
        before = status
    who = f"C-R{s.tag}-{cust}"
    return OrderView(
        order_id=f"SO-R{s.tag}-{n}",
        status=OrderStatus(history[-1][1]),
        customer=Customer(id=who, name=f"Customer {cust}", email=f"c{cust}@{s.tag}.example"),
        channel=Channel(channel),
        ship_to=Address(name="X", line1="1 Road", city="Town", postal_code="1", country=country),
        payment_method=PaymentMethod(method),
        delivery=DeliveryOption.EXPRESS if n in EXPRESS else DeliveryOption.STANDARD,
        lines=order_lines,
        totals=Totals(
            currency=PRODUCTS[lines[0][0]][3],
            subtotal=subtotal,
            discount=D("0.00"),
            shipping=D(shipping),
            tax=D("0.00"),
            total=subtotal + D(shipping),
        ),
        created_at=placed,
        updated_at=entries[-1].at,
        history=entries,
    )


_SEEDED_WEEKS: set[int] = set()


async def _seed(stack: Any) -> Seeded:
    tag = uuid.uuid4().hex[:6].upper()
    # A random Monday between 1971 and 1999: its own two ISO weeks, far from any other rows,
    # and never next to another seed of this session (they would count each other's sales).
    week = random.choice([w for w in range(0, 1500, 3) if w not in _SEEDED_WEEKS])
    _SEEDED_WEEKS.add(week)
    first = date(1971, 1, 4) + timedelta(weeks=week)
    s = Seeded(
        first=first,
        last=first + timedelta(days=9),
        tag=tag,
        cat=f"rpt-{tag}",
        cat2=f"rpt2-{tag}",
        sku={k: f"SKU-R{k}-{tag}" for k in PRODUCTS},
    )
    async with stack.sessions.begin() as session:
        for k, (name, cat, price, cur, active, stock) in PRODUCTS.items():
            await session.execute(
                text(
                    "insert into products (sku, name, variant, category, unit_price, currency,"
                    " active) values (:sku, :name, '', :cat, :price, :cur, :active)"
                ),
                {
                    "sku": s.sku[k],
                    "name": name,
                    "cat": s.cat if cat == 1 else s.cat2,
                    "price": D(price),
                    "cur": cur,
                    "active": active,
                },
            )
            for wh, qty in stock.items():
                await session.execute(
                    text(
                        "insert into stock (sku, warehouse_id, on_hand, reserved)"
                        " values (:s, :w, :q, 0)"
                    ),
                    {"s": s.sku[k], "w": wh, "q": qty},
                )
        for n in ORDERS:
            view = _view(s, n, first)
            await orders_repo.save_view(session, view, len(view.history))
            if n in WITHOUT_DELIVERY:
                await session.execute(
                    text("update orders set view = view - 'delivery' where order_id = :o"),
                    {"o": view.order_id},
                )
            if n in SHIPPED:
                for ln in view.lines:
                    await session.execute(
                        text(
                            "insert into reservations (order_id, batch, sku, warehouse_id,"
                            " quantity, state) values (:o, 1, :s, 'WH-SHA', :q, 'shipped')"
                        ),
                        {"o": view.order_id, "s": ln.sku, "q": ln.quantity},
                    )
        # Held units have not left: they never count as shipped.
        await session.execute(
            text(
                "insert into reservations (order_id, batch, sku, warehouse_id, quantity, state)"
                " values (:o, 1, :s, 'WH-SHA', 1, 'held')"
            ),
            {"o": f"SO-R{tag}-O7", "s": s.sku["A"]},
        )
        for n in WITH_RETURN:
            await session.execute(
                text(
                    "insert into returns (return_id, order_id, status, kind, view, restocked,"
                    " created_at, updated_at) values (:r, :o, 'REFUNDED', 'refund', '{}', false,"
                    " now(), now())"
                ),
                {"r": f"RT-R{tag}-{n}", "o": f"SO-R{tag}-{n}"},
            )
    return s


@pytest.fixture
async def seeded(make_stack) -> tuple[Any, Seeded]:
    stack = await make_stack(start_worker=False)
    return stack, await _seed(stack)


async def _get(stack: Any, s: Seeded, path: str, **params: Any) -> dict[str, Any]:
    r = await stack.api.get(f"/reports/{path}", params={**s.span, **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert (body["from"], body["to"]) == (s.first.isoformat(), s.last.isoformat())
    return body


def _week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


async def test_sales_by_day_week_product_category_and_channel(seeded) -> None:
    stack, s = seeded
    day = [(s.first + timedelta(days=n)).isoformat() for n in (0, 1, 8, 9)]
    rows = (await _get(stack, s, "sales", by="day"))["rows"]
    assert [(r["key"], r["currency"], r["orders"], r["units"]) for r in rows] == [
        (day[0], "USD", 2, 5),
        (day[1], "USD", 1, 3),
        (day[2], "USD", 1, 4),
        (day[3], "EUR", 1, 2),
    ]
    assert [(r["revenue"], r["order_total"]) for r in rows] == [
        ("55.00", "60.00"),
        ("15.00", "20.00"),
        ("40.00", "40.00"),
        ("16.00", "20.00"),
    ]

    rows = (await _get(stack, s, "sales", by="week"))["rows"]
    w1, w2 = _week(s.first), _week(s.first + timedelta(days=7))
    assert [(r["key"], r["currency"], r["orders"], r["units"], r["revenue"]) for r in rows] == [
        (w1, "USD", 3, 8, "70.00"),
        (w2, "EUR", 1, 2, "16.00"),
        (w2, "USD", 1, 4, "40.00"),
    ]
    assert [r["order_total"] for r in rows] == ["80.00", "20.00", "40.00"]

    rows = (await _get(stack, s, "sales", by="product"))["rows"]
    got = [(r["key"], r["name"], r["currency"], r["orders"], r["units"]) for r in rows]
    assert got == [
        (s.sku["A"], "Alpha", "USD", 3, 4),
        (s.sku["C"], "Gamma", "USD", 2, 2),
        (s.sku["B"], HOSTILE, "USD", 3, 6),
        (s.sku["F"], "Phi", "EUR", 1, 2),
    ]
    # Revenue first, then SKU: A and C tie at 40.00.
    assert [r["revenue"] for r in rows] == ["40.00", "40.00", "30.00", "16.00"]
    assert [r["order_total"] for r in rows] == [None] * 4

    rows = (await _get(stack, s, "sales", by="category"))["rows"]
    assert [(r["key"], r["currency"], r["orders"], r["units"], r["revenue"]) for r in rows] == [
        (s.cat, "USD", 4, 10, "70.00"),
        (s.cat2, "USD", 2, 2, "40.00"),
        (s.cat2, "EUR", 1, 2, "16.00"),
    ]

    rows = (await _get(stack, s, "sales", by="channel"))["rows"]
    assert [
        (r["key"], r["currency"], r["orders"], r["units"], r["revenue"], r["order_total"])
        for r in rows
    ] == [
        ("mobile", "USD", 1, 2, "30.00", "30.00"),
        ("web", "EUR", 1, 2, "16.00", "20.00"),
        ("web", "USD", 3, 10, "80.00", "90.00"),
    ]


async def test_best_and_slow_sellers(seeded) -> None:
    stack, s = seeded
    best = (await _get(stack, s, "best-sellers", limit=3))["rows"]
    assert [(r["sku"], r["units"], r["orders"]) for r in best] == [
        (s.sku["B"], 6, 3),
        (s.sku["A"], 4, 3),
        (s.sku["C"], 2, 2),
    ]
    assert best[0]["name"] == HOSTILE and best[0]["category"] == s.cat
    best = (await _get(stack, s, "best-sellers", category=s.cat2))["rows"]
    assert [(r["sku"], r["units"]) for r in best] == [(s.sku["C"], 2), (s.sku["F"], 2)]
    # E is not for sale any more: it is not slow, it is gone.
    slow = (await _get(stack, s, "slow-sellers", category=s.cat, limit=5))["rows"]
    assert [(r["sku"], r["units"], r["orders"]) for r in slow] == [
        (s.sku["D"], 0, 0),
        (s.sku["A"], 4, 3),
        (s.sku["B"], 6, 3),
    ]
    slow = (await _get(stack, s, "slow-sellers", category=s.cat, limit=2))["rows"]
    assert [r["sku"] for r in slow] == [s.sku["D"], s.sku["A"]]


async def test_time_per_stage(seeded) -> None:
    stack, s = seeded
    rows = (await _get(stack, s, "stage-times"))["rows"]
    got = {r["status"]: (r["stays"], r["median_seconds"], r["p90_seconds"]) for r in rows}
    # Stays in minutes, sorted; percentile_cont interpolates at p * (n - 1).
    assert got == {
        # 1 2 5 5 10 15 20 30 40: median the 5th; p90 at 7.2 = 30 + 0.2 * 10.
        "PLACED": (9, 600.0, 32 * 60.0),
        "PENDING_REVIEW": (1, 3600.0, 3600.0),
        # O7 still waits for its money: an open stay is not counted.
        "AWAITING_PAYMENT": (1, 3600.0, 3600.0),
        "BACKORDERED": (0, None, None),
        # 20 20 30 40 60 60 70 (O1's second CONFIRMED event is no new stay): p90 at 5.4.
        "CONFIRMED": (7, 40 * 60.0, 64 * 60.0),
        # 10 10 10 10 10 30: median at 2.5, p90 at 4.5 = 10 + 0.5 * 20.
        "PICKING": (6, 600.0, 1200.0),
        "PACKED": (6, 3600.0, 3600.0),
        "PARTIALLY_SHIPPED": (0, None, None),
        # 880 900 900 1440 1830: p90 at 3.6 = 1440 + 0.6 * 390.
        "SHIPPED": (5, 900 * 60.0, 1674 * 60.0),
        # 10 95 100 1440 1440: O9 was delivered twice (a return was rejected in between).
        "DELIVERED": (5, 100 * 60.0, 1440 * 60.0),
    }
    assert [r["status"] for r in rows][:3] == ["PLACED", "PENDING_REVIEW", "AWAITING_PAYMENT"]


async def test_outcome_and_repeat_purchase_rates(seeded) -> None:
    stack, s = seeded
    rates = await _get(stack, s, "rates")
    assert rates["placed"] == 9
    assert {r["outcome"]: (r["orders"], r["share"]) for r in rates["rows"]} == {
        "completed": (2, "0.2222"),
        "cancelled": (1, "0.1111"),
        "failed": (1, "0.1111"),
        "returned": (2, "0.2222"),
    }
    # Sales: C1 twice, C2 twice, C6 once. C3 placed two orders, but neither is a sale.
    repeat = await _get(stack, s, "repeat-purchases")
    assert (repeat["customers"], repeat["repeat_customers"], repeat["orders"]) == (3, 2, 5)
    assert repeat["rate"] == "0.6667"


async def test_customer_preferences(seeded) -> None:
    stack, s = seeded
    p = await _get(stack, s, "preferences")
    assert p["orders"] == 5

    def spread(rows: list[dict[str, Any]]) -> list[tuple[str, int, str]]:
        return [(r["value"], r["orders"], r["share"]) for r in rows]

    assert spread(p["category"]) == [(s.cat, 4, "0.8000"), (s.cat2, 3, "0.6000")]
    assert [r["units"] for r in p["category"]] == [10, 4]
    assert spread(p["payment_method"]) == [("card", 4, "0.8000"), ("wallet", 1, "0.2000")]
    # O1 (recorded without an option), O3 and O6 standard; O2 and O8 express.
    assert spread(p["delivery_option"]) == [
        ("standard", 3, "0.6000"),
        ("express", 2, "0.4000"),
    ]
    assert spread(p["ship_to_country"]) == [
        ("CN", 3, "0.6000"),
        ("DE", 1, "0.2000"),
        ("NL", 1, "0.2000"),
    ]


async def test_bought_together_and_turnover(seeded) -> None:
    stack, s = seeded
    pairs = (await _get(stack, s, "bought-together", limit=5))["rows"]
    # The cancelled O4 (A with C) is no sale and adds nothing.
    assert [(r["first"], r["second"], r["orders"]) for r in pairs] == [
        (s.sku["A"], s.sku["B"], 2),
        (s.sku["A"], s.sku["C"], 2),
        (s.sku["B"], s.sku["C"], 1),
    ]
    assert pairs[0]["first_name"] == "Alpha" and pairs[0]["second_name"] == HOSTILE
    assert len((await _get(stack, s, "bought-together", limit=1))["rows"]) == 1

    # Shipped in the period: A 2+1+1+1 and BEFORE's 3 (AFTER ships after it), B 1+3+2, C 2,
    # F 2; on hand now: A 40, B 10, C 0, D 5, F 4.
    rows = (await _get(stack, s, "inventory-turnover", limit=3))["rows"]
    assert [(r["sku"], r["units_shipped"], r["on_hand"], r["turnover"]) for r in rows] == [
        (s.sku["B"], 6, 10, "0.6000"),
        (s.sku["F"], 2, 4, "0.5000"),
        (s.sku["A"], 8, 40, "0.2000"),
    ]
    rows = (await _get(stack, s, "inventory-turnover", category=s.cat2))["rows"]
    assert [(r["sku"], r["units_shipped"], r["on_hand"], r["turnover"]) for r in rows] == [
        (s.sku["F"], 2, 4, "0.5000"),
        (s.sku["C"], 2, 0, None),
    ]
    rows = (await _get(stack, s, "inventory-turnover", category=s.cat))["rows"]
    assert [r["sku"] for r in rows] == [s.sku["B"], s.sku["A"], s.sku["D"]]
    assert rows[-1]["turnover"] == "0.0000"


def _svg_texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    return [t.text or "" for t in root.iter(f"{SVG_NS}text")]


async def test_charts_and_the_report_page(seeded) -> None:
    stack, s = seeded
    r = await stack.api.get("/reports/sales.svg", params={**s.span, "by": "day"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    texts = _svg_texts(r.text)
    assert f"Revenue by day in USD, {s.first} to {s.last}" in texts
    days = [(s.first + timedelta(days=n)).isoformat() for n in (0, 1, 8)]
    assert all(d in texts for d in days)
    assert (s.first + timedelta(days=9)).isoformat() not in texts  # that day sold in EUR only

    r = await stack.api.get(
        "/reports/sales.svg", params={**s.span, "by": "product", "currency": "EUR"}
    )
    texts = _svg_texts(r.text)
    assert s.sku["F"] in texts and s.sku["A"] not in texts

    r = await stack.api.get("/reports/best-sellers.svg", params={**s.span, "limit": 3})
    texts = _svg_texts(r.text)
    assert "Alpha" in texts and "Gamma" in texts
    assert any(t.startswith('<script>alert("b"') for t in texts)  # escaped, so it parses
    assert "<script" not in r.text

    r = await stack.api.get("/reports/stage-times.svg", params=s.span)
    texts = _svg_texts(r.text)
    assert "CONFIRMED" in texts and "hours" in texts and "BACKORDERED" not in texts

    r = await stack.api.get("/reports", params=s.span)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#34;b&#34;)&lt;/script&gt;" in page
    assert "Outcomes of the 9 orders placed" in page and "0.6667" in page
    assert f"/reports/sales.svg?from={s.first}&amp;to={s.last}&amp;by=day&amp;currency=EUR" in (
        page
    )
    assert "/reports/stage-times.svg?" in page and "1h 0m" in page


async def test_bad_parameters_are_refused(make_stack) -> None:
    stack = await make_stack(start_worker=False)
    for path, params, status, code in [
        ("/reports/turnips", {}, 404, "unknown_report"),
        ("/reports/turnips.svg", {}, 404, "unknown_report"),
        ("/reports/sales", {"from": "2001-03-10", "to": "2001-03-01"}, 422, "bad_period"),
        ("/reports/rates", {"from": "2001-02-30"}, 422, "invalid_request"),
        ("/reports/rates", {"to": "yesterday"}, 422, "invalid_request"),
        ("/reports/rates", {"to": "9999-12-31"}, 422, "bad_period"),
        ("/reports/rates", {"from": "0001-01-01", "to": "2001-01-01"}, 422, "bad_period"),
        ("/reports/sales", {"by": "month"}, 422, "invalid_request"),
        ("/reports/best-sellers", {"limit": "0"}, 422, "invalid_request"),
        ("/reports/slow-sellers", {"limit": "101"}, 422, "invalid_request"),
        ("/reports/sales.svg", {"currency": "usd"}, 422, "invalid_request"),
        ("/reports", {"from": "2001-03-10", "to": "2001-03-01"}, 422, "bad_period"),
    ]:
        r = await stack.api.get(path, params=params)
        assert r.status_code == status, (path, params, r.text)
        error = r.json()["error"]
        assert error["code"] == code and error["message"], (path, params, error)
    r = await stack.api.get("/reports/turnips")
    assert "sales" in r.json()["error"]["message"]
    r = await stack.api.get("/reports/rates", params={"from": "2001-03-10", "to": "2001-03-01"})
    assert "from=2001-03-10 comes after to=2001-03-01" in r.json()["error"]["message"]
    # Without dates: the last 30 days up to today.
    r = await stack.api.get("/reports/rates")
    today = datetime.now(UTC).date()
    assert r.status_code == 200
    assert r.json()["to"] == today.isoformat()
    assert r.json()["from"] == (today - timedelta(days=29)).isoformat()


async def test_report_from_the_command_line(seeded, api_server, capsys) -> None:
    stack, s = seeded

    async def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        try:
            await asyncio.to_thread(
                main, ["report", *args, "--api", api_server.url, "--key", stack.staff_key]
            )
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        return code, capsys.readouterr().out

    span = ["--from", s.first.isoformat(), "--to", s.last.isoformat()]
    code, out = await run("sales", "--by", "channel", *span)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == f"sales  {s.first} to {s.last}" and lines[1] == "by: channel"
    header, rule, *rows = lines[3:]
    assert header.split() == ["key", "currency", "orders", "units", "revenue", "order_total"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert [r.split() for r in rows] == [
        ["mobile", "USD", "1", "2", "30.00", "30.00"],
        ["web", "EUR", "1", "2", "16.00", "20.00"],
        ["web", "USD", "3", "10", "80.00", "90.00"],
    ]

    code, out = await run("preferences", *span)
    assert code == 0 and "orders: 5" in out and "\npayment_method\n" in out
    assert "wallet" in out and "0.2000" in out

    code, out = await run("rates", *span, "--format", "json")
    assert code == 0 and json.loads(out)["placed"] == 9

    code, out = await run("turnips", *span)
    assert code == REFUSED and "unknown_report" in out
    code, out = await run("rates", "--from", "2001-03-10", "--to", "2001-03-01")
    assert code == REFUSED and "bad_period" in out
