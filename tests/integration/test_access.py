"""API keys and roles: nothing is open but health, docs and signed webhooks (§10)."""

from __future__ import annotations

import argparse
import asyncio
import re
import uuid

from models.api_keys import Role
from orderflow.keys_cli import run_keys
from tests.integration.helpers import order_body, place, wait_status

OPEN = {"/healthz", "/webhooks/carrier", "/webhooks/payments"}
# What a customer key may call (on its own orders); everything else needs staff.
CUSTOMER_ROUTES = {
    ("POST", "/orders"),
    ("GET", "/orders"),
    ("GET", "/orders/{order_id}"),
    ("PATCH", "/orders/{order_id}"),
    ("POST", "/orders/{order_id}/cancel"),
    ("POST", "/orders/{order_id}/reorder"),
    ("PUT", "/orders/{order_id}/payment-method"),
    ("POST", "/orders/{order_id}/returns"),
    ("GET", "/orders/{order_id}/messages"),
    ("POST", "/orders/{order_id}/feedback"),
    ("GET", "/orders/{order_id}/documents/{kind}"),
    ("GET", "/customers/{customer_id}"),
    ("GET", "/customers/{customer_id}/orders"),
}


def _routes(app) -> list[tuple[str, str]]:
    """Every documented route, as (method, path template)."""
    return sorted(
        (method.upper(), path)
        for path, methods in app.openapi()["paths"].items()
        for method in methods
    )


def _filled(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


async def test_every_route_but_the_open_ones_needs_a_key(make_stack) -> None:
    stack = await make_stack(start_worker=False)
    anonymous = stack.api_as(None)
    routes = _routes(stack.app)
    assert len(routes) > 40
    for method, path in routes:
        if path in OPEN:
            continue
        r = await anonymous.request(method, _filled(path), json={})
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.headers["www-authenticate"] == "Bearer"
    for docs in ("/docs", "/openapi.json", "/healthz"):
        assert (await anonymous.get(docs)).status_code == 200
    for bad in ("Bearer nope", "Bearer ofk_x_y", "Basic abc", "Bearer "):
        r = await anonymous.get("/orders", headers={"Authorization": bad})
        assert r.status_code == 401, bad


async def test_a_customer_key_reaches_only_its_own_orders(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    mine, theirs = (f"C-ACC-{uuid.uuid4().hex[:6]}" for _ in range(2))
    me = stack.api_as(await stack.key(Role.CUSTOMER, mine))

    for method, path in _routes(stack.app):
        if path in OPEN or (method, path) in CUSTOMER_ROUTES:
            continue
        r = await me.request(method, _filled(path), json={})
        assert r.status_code == 403, (method, path, r.status_code)

    own = (await me.post("/orders", json=order_body(customer_id=mine))).json()
    other = await place(stack.api, order_body(customer_id=theirs))
    await wait_status(stack.api, own["order_id"], "CONFIRMED")
    r = await me.post("/orders", json=order_body(customer_id=theirs))
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_your_customer"

    assert (await me.get(f"/orders/{own['order_id']}")).status_code == 200
    for path in ("", "/messages", "/documents/invoice"):
        r = await me.get(f"/orders/{other['order_id']}{path}")
        assert r.status_code == 404, (path, r.text)
    r = await me.post(f"/orders/{other['order_id']}/cancel", json={})
    assert r.status_code == 404
    assert (await stack.api.get(f"/orders/{other['order_id']}")).json()["status"] != "CANCELLED"

    listed = (await me.get("/orders")).json()["items"]
    assert [o["order_id"] for o in listed] == [own["order_id"]]
    assert (await me.get("/orders", params={"customer_id": theirs})).status_code == 403
    assert (await me.get(f"/customers/{theirs}")).status_code == 403

    await stack.api.post(f"/customers/{mine}/notes", json={"text": "called about tea"})
    staff_view = (await stack.api.get(f"/customers/{mine}")).json()
    assert any(e["type"] == "note" for e in staff_view["communication"])
    picture = (await me.get(f"/customers/{mine}")).json()
    assert picture["orders"] and all(e["type"] != "note" for e in picture["communication"])

    r = await me.post(f"/orders/{own['order_id']}/cancel", json={"reason": "changed my mind"})
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED"
    assert any(h["actor"] == "customer:test-customer" for h in r.json()["history"])
    await stack.api.post(f"/orders/{other['order_id']}/cancel", json={})


async def test_admin_keys_are_created_listed_and_revoked(make_stack) -> None:
    stack = await make_stack(start_worker=False)
    admin = stack.api_as(await stack.key(Role.ADMIN))
    r = await stack.api.post("/admin/api-keys", json={"name": "x", "role": "staff"})
    assert r.status_code == 403

    bad = await admin.post("/admin/api-keys", json={"name": "x", "role": "customer"})
    assert bad.status_code == 422
    r = await admin.post("/admin/api-keys", json={"name": "night shift", "role": "staff"})
    assert r.status_code == 201, r.text
    made = r.json()
    night = stack.api_as(made["key"])
    assert (await night.get("/alerts")).status_code == 200

    listed = (await admin.get("/admin/api-keys")).json()["items"]
    row = next(k for k in listed if k["key_id"] == made["key_id"])
    assert row["name"] == "night shift" and "key" not in row and "secret_hash" not in row
    stored = await stack.sql("select secret_hash from api_keys where key_id=:k", k=made["key_id"])
    assert made["key"] not in stored[0][0]

    assert (await admin.delete(f"/admin/api-keys/{made['key_id']}")).status_code == 200
    assert (await night.get("/alerts")).status_code == 401
    assert (await admin.delete("/admin/api-keys/nope")).status_code == 404

    shown = (await admin.get("/admin/settings")).json()
    assert shown["webhook_secret"] == "(set)" and shown["api_port"] == stack.settings.api_port
    assert shown["payment_webhook_secret"] == "(set)"


async def test_first_admin_key_from_the_command_line(make_stack, capsys) -> None:
    # A key revoked outside the API is refused once the API's key cache lets go of it.
    stack = await make_stack(start_worker=False, api_key_cache_seconds=0)
    args = argparse.Namespace(name="ops", role="admin", customer_id=None)
    await asyncio.to_thread(
        run_keys, stack.settings, argparse.Namespace(action="create", **vars(args))
    )
    token = capsys.readouterr().out.splitlines()[-1]
    admin = stack.api_as(token)
    assert (await admin.get("/admin/api-keys")).status_code == 200
    key_id = token.split("_")[1]
    await asyncio.to_thread(run_keys, stack.settings, argparse.Namespace(action="list"))
    assert any(key_id in line and "active" in line for line in capsys.readouterr().out.splitlines())
    await asyncio.to_thread(
        run_keys, stack.settings, argparse.Namespace(action="revoke", key_id=key_id)
    )
    assert (await stack.api_as(token).get("/admin/api-keys")).status_code == 401
