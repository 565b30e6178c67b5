"""The console's pages over HTTP (the browser tests in tests/e2e drive the same pages)."""

from __future__ import annotations

import re

import httpx

from models.api_keys import Role
from tests.integration.helpers import order_body, place, wait_status


def _browser(stack) -> httpx.AsyncClient:
    """A client with no API key: it signs in as a person would, and keeps its cookies."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=stack.app), base_url="http://console", timeout=60
    )


def _token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


async def _sign_in(browser: httpx.AsyncClient, key: str) -> None:
    page = await browser.get("/console/sign-in")
    assert page.status_code == 200 and "API key" in page.text and "Sign in" in page.text
    r = await browser.post(
        "/console/sign-in", data={"api_key": key, "csrf_token": _token(page.text)}
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/orders", r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")


async def test_staff_sign_in_find_an_order_and_cancel_it(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    sku = await stack.add_product({"WH-SHA": 5}, price="10.00")
    oid = (await place(stack.api, order_body([(sku, 2)], customer_id="C-7711")))["order_id"]
    await wait_status(stack.api, oid, "CONFIRMED")
    async with _browser(stack) as browser:
        assert (await browser.get("/console/orders")).headers["location"] == "/console/sign-in"
        await _sign_in(browser, stack.staff_key)
        listing = await browser.get("/console/orders", params={"q": oid})
        assert listing.status_code == 200 and oid in listing.text and "CONFIRMED" in listing.text
        page = await browser.get(f"/console/orders/{oid}")
        assert "Cancel order" in page.text and "Kept" in page.text
        # The first press asks to confirm; nothing changes yet.
        confirm = await browser.post(
            f"/console/orders/{oid}/actions/cancel", data={"csrf_token": _token(page.text)}
        )
        assert confirm.status_code == 200 and "Confirm" in confirm.text
        assert (await stack.api.get(f"/orders/{oid}")).json()["status"] == "CONFIRMED"
        form = dict(re.findall(r'name="(\w+)" value="([^"]*)"', confirm.text))
        form["reason"] = "customer called"
        done = await browser.post(f"/console/orders/{oid}/actions/cancel", data=form)
        assert done.status_code == 303, done.text
        # The same form again (a double click): one change, and no refusal.
        again = await browser.post(f"/console/orders/{oid}/actions/cancel", data=form)
        assert again.status_code == 303, again.text
    view = (await stack.api.get(f"/orders/{oid}")).json()
    assert view["status"] == "CANCELLED" and view["status_reason"] == "customer called"
    assert [h["kind"] for h in view["history"]].count("status:CANCELLED") == 1
    assert next(h for h in view["history"] if h["kind"] == "status:CANCELLED")["actor"] == (
        "staff:tests"
    )
    assert await stack.stock(sku) == {"WH-SHA": (5, 0)}


async def test_a_forged_form_is_refused(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    oid = (await place(stack.api, order_body()))["order_id"]
    await wait_status(stack.api, oid, "CONFIRMED")
    async with _browser(stack) as browser:
        await _sign_in(browser, stack.staff_key)
        for data in ({"confirmed": "yes"}, {"confirmed": "yes", "csrf_token": "guess"}):
            r = await browser.post(f"/console/orders/{oid}/actions/cancel", data=data)
            assert r.status_code == 403 and "security token" in r.text
    assert (await stack.api.get(f"/orders/{oid}")).json()["status"] == "CONFIRMED"


async def test_a_customer_sees_only_its_own_orders(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    mine = (await place(stack.api, order_body(customer_id="C-5150")))["order_id"]
    theirs = (await place(stack.api, order_body(customer_id="C-5151")))["order_id"]
    await wait_status(stack.api, mine, "CONFIRMED")
    await wait_status(stack.api, theirs, "CONFIRMED")
    key = await stack.key(Role.CUSTOMER, "C-5150")
    async with _browser(stack) as browser:
        await _sign_in(browser, key)
        listing = await browser.get("/console/orders", params={"customer_id": "C-5151"})
        assert "My orders" in listing.text and mine in listing.text and theirs not in listing.text
        assert (await browser.get(f"/console/orders/{theirs}")).status_code == 404
        page = await browser.get(f"/console/orders/{mine}")
        assert page.status_code == 200 and "Cancel order" in page.text
        assert "Approve" not in page.text


async def test_a_wrong_key_does_not_sign_in(make_stack) -> None:
    stack = await make_stack()
    async with _browser(stack) as browser:
        page = await browser.get("/console/sign-in")
        r = await browser.post(
            "/console/sign-in", data={"api_key": "ofk_nope", "csrf_token": _token(page.text)}
        )
        assert r.status_code == 401 and "Unknown or revoked API key" in r.text
        assert "ofc_session" not in r.headers.get("set-cookie", "")


async def test_staff_notes_on_the_customer_page_keep_the_api_rules(make_stack) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    mine = (await place(stack.api, order_body(customer_id="C-6160")))["order_id"]
    other = (await place(stack.api, order_body(customer_id="C-6161")))["order_id"]
    await wait_status(stack.api, mine, "CONFIRMED")
    async with _browser(stack) as browser:
        await _sign_in(browser, stack.staff_key)
        found = await browser.get("/console/customers", params={"customer_id": " C-6160 "})
        assert found.status_code == 303 and found.headers["location"] == "/console/customers/C-6160"
        page = await browser.get("/console/customers/C-6160")
        assert page.status_code == 200 and mine in page.text and other not in page.text
        token = _token(page.text)
        url = "/console/customers/C-6160/notes"
        # Refused as the API refuses them: an empty note, an order of another customer, an
        # unknown customer, and a form without its token.
        empty = await browser.post(url, data={"csrf_token": token, "text": "   "})
        assert empty.status_code == 422 and "invalid_request" in empty.text
        theirs = await browser.post(url, data={"csrf_token": token, "text": "x", "order_id": other})
        assert theirs.status_code == 422 and "unknown_order" in theirs.text
        assert 'name="text"' in theirs.text and ">x</textarea>" in theirs.text
        nobody = await browser.post(
            "/console/customers/C-NOBODY/notes", data={"csrf_token": token, "text": "x"}
        )
        assert nobody.status_code == 404 and "no customer C-NOBODY" in nobody.text
        forged = await browser.post(url, data={"text": "forged"})
        assert forged.status_code == 403
        assert await stack.sql(
            "select count(*) from customer_notes where customer_id like 'C-61%'"
        ) == [(0,)]
        done = await browser.post(
            url, data={"csrf_token": token, "text": "called back", "order_id": mine}
        )
        assert done.status_code == 303 and done.headers["location"].endswith("?done=note")
        shown = await browser.get(done.headers["location"])
        assert "Done: note added" in shown.text and "called back" in shown.text
    picture = (await stack.api.get("/customers/C-6160")).json()
    notes = [e for e in picture["communication"] if e["type"] == "note"]
    assert [(n["author"], n["text"], n["order_id"]) for n in notes] == [
        ("staff:tests", "called back", mine)
    ]


async def test_customer_and_alert_pages_are_for_staff(make_stack) -> None:
    stack = await make_stack()
    key = await stack.key(Role.CUSTOMER, "C-6170")
    async with _browser(stack) as browser:
        for url in ("/console/customers/C-6170", "/console/alerts"):
            assert (await browser.get(url)).headers["location"] == "/console/sign-in"
        await _sign_in(browser, key)
        listing = await browser.get("/console/orders")
        assert 'href="/console/alerts"' not in listing.text
        assert 'href="/console/customers"' not in listing.text
        for url in ("/console/customers", "/console/customers/C-6170", "/console/alerts"):
            r = await browser.get(url)
            assert r.status_code == 403 and "this page is for staff" in r.text, url
    async with _browser(stack) as browser:
        await _sign_in(browser, stack.staff_key)
        listing = await browser.get("/console/orders")
        assert 'href="/console/alerts"' in listing.text
        assert (await browser.get("/console/alerts")).status_code == 200
