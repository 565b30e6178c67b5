"""Request bodies and bounded waits shared by the integration tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx

from models.order import Totals

TERMINAL = {"COMPLETED", "CANCELLED", "FAILED"}


def order_body(
    lines: list[tuple[str, int]] | None = None,
    token: str = "tok_ok",
    postal_code: str = "200001",
    customer_id: str = "C-1001",
    country: str = "CN",
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer": {
            "id": customer_id,
            "name": "Li Lei",
            "email": "li@example.com",
            "phone": "+86 138 0000 0000",
        },
        "channel": "web",
        "lines": [{"sku": s, "quantity": q} for s, q in (lines or [("SKU-TEA-001", 2)])],
        "ship_to": {
            "name": "Li Lei",
            "line1": "1 Nanjing Rd",
            "city": "Shanghai",
            "postal_code": postal_code,
            "country": country,
            "phone": "+86 138 0000 0000",
        },
        "payment": {"method": "card", "token": token},
    }
    body.update(extra)
    return body


async def eventually(
    probe: Callable[[], Awaitable[Any]], ok: Callable[[Any], bool], within: float = 30.0
) -> Any:
    """Poll until `ok(probe())`, failing with the last value seen after `within` seconds."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if ok(last):
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"condition not met within {within} s; last value: {last!r}")


async def wait_status(
    api: httpx.AsyncClient, order_id: str, statuses: str | set[str], within: float = 30.0
) -> dict[str, Any]:
    """Wait until the order reaches one of `statuses`; returns its view."""
    wanted = {statuses} if isinstance(statuses, str) else statuses

    async def probe() -> dict[str, Any]:
        r = await api.get(f"/orders/{order_id}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    view: dict[str, Any] = await eventually(probe, lambda v: v["status"] in wanted, within)

    # An order not recorded yet is answered by its workflow, which may be ahead of its first
    # write; tests read PostgreSQL next, so wait for the row too, unless the order moved on.
    async def recorded() -> tuple[str | None, str]:
        r = await api.get("/orders", params={"q": order_id})
        assert r.status_code == 200, r.text
        rows = [i for i in r.json()["items"] if i["order_id"] == order_id]
        return (rows[0]["status"] if rows else None), (await probe())["status"]

    await eventually(
        recorded, lambda got: got[0] == view["status"] or got[1] != view["status"], within
    )
    return view


async def place(api: httpx.AsyncClient, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    r = await api.post("/orders", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def wait_booked(
    api: httpx.AsyncClient, order_id: str, within: float = 30.0
) -> dict[str, Any]:
    """Wait until the order is packed and its parcel booked (PACKED comes a moment before)."""

    async def probe() -> dict[str, Any]:
        return (await api.get(f"/orders/{order_id}")).json()  # type: ignore[no-any-return]

    return await eventually(  # type: ignore[no-any-return]
        probe,
        lambda v: v["status"] == "PACKED" and any(s["status"] == "booked" for s in v["shipments"]),
        within,
    )


def usd_totals(total: Decimal) -> Totals:
    """Totals of an order with no discount, shipping or tax."""
    zero = Decimal("0")
    return Totals(
        currency="USD", subtotal=total, discount=zero, shipping=zero, tax=zero, total=total
    )
