"""No lost update: an order's version is its ETag, and edits made with If-Match against an
older version are refused with 412."""

from __future__ import annotations

import asyncio

from tests.integration.helpers import order_body, place, wait_status


async def _confirmed(stack) -> tuple[str, str, dict]:
    sku = await stack.add_product({"WH-SHA": 20}, price="10.00")
    oid = (await place(stack.api, order_body([(sku, 1)])))["order_id"]
    view = await wait_status(stack.api, oid, "CONFIRMED")
    return oid, sku, view


def _lines(sku: str, n: int) -> dict:
    return {"lines": [{"sku": sku, "quantity": n}]}


async def test_an_edit_against_an_old_version_is_refused(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    oid, sku, _ = await _confirmed(stack)
    r = await stack.api.get(f"/orders/{oid}")
    tag = r.headers["ETag"]
    assert tag == f'"{r.json()["version"]}"'
    # Unchanged since: a conditional GET costs nothing.
    same = await stack.api.get(f"/orders/{oid}", headers={"If-None-Match": tag})
    assert same.status_code == 304 and same.headers["ETag"] == tag

    r = await stack.api.patch(f"/orders/{oid}", json=_lines(sku, 2), headers={"If-Match": tag})
    assert r.status_code == 200, r.text
    new_tag = r.headers["ETag"]
    assert new_tag != tag and new_tag == f'"{r.json()["version"]}"'
    assert (await stack.api.get(f"/orders/{oid}")).headers["ETag"] == new_tag

    stale = await stack.api.patch(f"/orders/{oid}", json=_lines(sku, 5), headers={"If-Match": tag})
    assert stale.status_code == 412, stale.text
    assert stale.json()["error"]["code"] == "version_mismatch"
    view = (await stack.api.get(f"/orders/{oid}")).json()
    assert view["lines"][0]["quantity"] == 2 and f'"{view["version"]}"' == new_tag
    assert await stack.stock(sku) == {"WH-SHA": (20, 2)}
    assert [h["kind"] for h in view["history"]].count("edit_refused") == 1

    for bad in ("7", '"x"', '"1", "2"'):
        r = await stack.api.post(f"/orders/{oid}/cancel", json={}, headers={"If-Match": bad})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_if_match", bad
    r = await stack.api.post(f"/orders/{oid}/cancel", json={}, headers={"If-Match": tag})
    assert r.status_code == 412
    r = await stack.api.post(f"/orders/{oid}/cancel", json={}, headers={"If-Match": "*"})
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED"


async def test_two_edits_at_once_with_if_match_have_one_winner(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    oid, sku, view = await _confirmed(stack)
    tag = f'"{view["version"]}"'
    a, b = await asyncio.gather(
        stack.api.patch(f"/orders/{oid}", json=_lines(sku, 3), headers={"If-Match": tag}),
        stack.api.patch(f"/orders/{oid}", json=_lines(sku, 4), headers={"If-Match": tag}),
    )
    assert sorted([a.status_code, b.status_code]) == [200, 412], (a.text, b.text)
    winner = a if a.status_code == 200 else b
    final = (await stack.api.get(f"/orders/{oid}")).json()
    assert final["lines"] == winner.json()["lines"]
    assert await stack.stock(sku) == {"WH-SHA": (20, final["lines"][0]["quantity"])}


async def test_two_edits_at_once_without_if_match_both_show_in_the_history(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    oid, sku, _ = await _confirmed(stack)
    a, b = await asyncio.gather(
        stack.api.patch(f"/orders/{oid}", json=_lines(sku, 3)),
        stack.api.patch(f"/orders/{oid}", json=_lines(sku, 4)),
    )
    assert a.status_code == 200 and b.status_code == 200, (a.text, b.text)
    # Applied one after the other: each answer shows its own edit, the later one wins, and the
    # history shows both with what each changed from and to, so nothing is lost silently.
    assert a.json()["version"] != b.json()["version"]
    final = (await stack.api.get(f"/orders/{oid}")).json()
    edits = [h["detail"] for h in final["history"] if h["kind"] == "modified"]
    assert len(edits) == 2
    assert edits[0].startswith("lines: 1 x")
    first_to = edits[0].split(";")[0].split("→ ")[1]
    second_from = edits[1].split(";")[0].split("→")[0].removeprefix("lines: ").strip()
    assert first_to.strip() == second_from
    last = max((a, b), key=lambda r: r.json()["version"])
    assert final["lines"] == last.json()["lines"]
