"""Creating orders: idempotency, server-side pricing, and refusals that create nothing (§1)."""

from __future__ import annotations

import asyncio
import json

from tests.integration.helpers import order_body, place, wait_status


async def _counts(stack) -> tuple[int, int]:
    intake = await stack.sql("select count(*) from order_intake")
    orders = await stack.sql("select count(*) from orders")
    return intake[0][0], orders[0][0]


async def test_same_idempotency_key_returns_the_same_order(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    body = order_body()
    first = await place(stack.api, body, **{"Idempotency-Key": "key-dup-1"})
    again = await stack.api.post("/orders", json=body, headers={"Idempotency-Key": "key-dup-1"})
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["order_id"] == first["order_id"]

    different = await stack.api.post(
        "/orders", json=order_body([("SKU-TEA-002", 1)]), headers={"Idempotency-Key": "key-dup-1"}
    )
    assert different.status_code == 422
    assert different.json()["error"]["code"] == "idempotency_key_reused"
    await stack.api.post(f"/orders/{first['order_id']}/cancel", json={})


async def test_concurrent_duplicates_make_one_order(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    body = order_body(channel="marketplace", channel_order_id="MKT-778899")
    replies = await asyncio.gather(
        *(
            stack.api.post("/orders", json=body, headers={"Idempotency-Key": "k-c"})
            for _ in range(8)
        )
    )
    assert all(r.status_code in (200, 201) for r in replies), [r.text for r in replies]
    ids = {r.json()["order_id"] for r in replies}
    assert len(ids) == 1
    assert sum(r.status_code == 201 for r in replies) == 1
    # The channel's own order id alone also finds it, without the key.
    again = await stack.api.post("/orders", json=body)
    assert again.status_code == 200 and again.json()["order_id"] in ids
    oid = ids.pop()
    await wait_status(stack.api, oid, "CONFIRMED")
    assert await stack.sql("select count(*) from orders where channel_order_id='MKT-778899'") == [
        (1,)
    ]
    await stack.api.post(f"/orders/{oid}/cancel", json={})


async def test_client_prices_and_totals_are_ignored(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    body = order_body([("SKU-POT-001", 1)])
    body["lines"][0]["unit_price"] = "0.01"
    body["totals"] = {"total": "0.01", "currency": "USD"}
    order = await place(stack.api, body)
    assert order["lines"][0]["unit_price"] == "89.00"
    assert order["totals"]["total"] != "0.01"
    view = await wait_status(stack.api, order["order_id"], "CONFIRMED")
    assert view["payments"][0]["amount"] == order["totals"]["total"]
    await stack.api.post(f"/orders/{order['order_id']}/cancel", json={})


async def test_bad_input_gets_4xx_and_creates_nothing(make_stack) -> None:
    stack = await make_stack()
    before = await _counts(stack)
    ship_to = order_body()["ship_to"]
    cases = [
        (order_body([("SKU-NOPE-404", 1)]), 422, "invalid_lines"),
        (order_body([("SKU-TEA-001", 0)]), 422, "invalid_request"),
        (order_body([("SKU-TEA-001", -3)]), 422, "invalid_request"),
        (order_body(lines=[]) | {"lines": []}, 422, "invalid_request"),
        (order_body() | {"ship_to": {k: v for k, v in ship_to.items() if k != "city"}}, 422, None),
        (order_body() | {"ship_to": ship_to | {"country": "China"}}, 422, None),
        (order_body() | {"customer": {"id": "C-1", "name": "x", "email": "nope"}}, 422, None),
        (order_body(promotion_code="NOT-A-CODE"), 422, "unknown_promotion"),
        (order_body() | {"channel": "fax"}, 422, None),
    ]
    for body, status, code in cases:
        r = await stack.api.post("/orders", json=body)
        assert r.status_code == status, (body, r.text)
        assert "error" in r.json() and r.json()["error"]["message"]
        if code:
            assert r.json()["error"]["code"] == code, r.text

    raw_cases = [
        (b'{"customer": ', 400, "malformed_json"),
        (b"[" * 50_000 + b"]" * 50_000, 413, "body_too_large"),
        (b"[" * 20_000 + b"]" * 20_000, 400, None),
        (json.dumps(order_body() | {"notes": "x" * 70_000}).encode(), 413, "body_too_large"),
        (b"not json at all", 400, "malformed_json"),
    ]
    for raw, status, code in raw_cases:
        r = await stack.api.post(
            "/orders", content=raw, headers={"content-type": "application/json"}
        )
        assert r.status_code == status, (raw[:40], r.status_code, r.text[:200])
        if code:
            assert r.json()["error"]["code"] == code
    assert await _counts(stack) == before


async def test_unknown_order_is_404_everywhere(make_stack) -> None:
    stack = await make_stack(start_worker=False)
    for method, path, body in (
        ("GET", "/orders/SO-19990101-00000000", None),
        ("PATCH", "/orders/SO-19990101-00000000", {"contact": {"phone": "1"}}),
        ("POST", "/orders/SO-19990101-00000000/cancel", {}),
    ):
        r = await stack.api.request(method, path, json=body)
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "order_not_found"
