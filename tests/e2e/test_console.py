"""The console in a real browser against the real stack: sign in, find, open, act, refuse."""

from __future__ import annotations

import uuid
from decimal import Decimal

from playwright.async_api import Page, expect

from tests.e2e.browser import shot
from tests.integration.helpers import eventually, order_body, place, wait_status
from tests.real_stack import Stack

HOLD = "11111"  # the carrier stand-in holds these parcels: the order waits at PACKED


async def _sign_in(page: Page, key: str) -> None:
    await page.goto("/console")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def _customer(tag: str) -> dict[str, str]:
    return {"id": f"C-{tag}", "name": f"Ana {tag}", "email": f"{tag.lower()}@example.com"}


async def test_staff_find_an_order_by_its_customer_and_cancel_it(
    page: Page, stack: Stack, staff_key: str
) -> None:
    tag = f"E2E{uuid.uuid4().hex[:6].upper()}"
    sku = await stack.add_product({"WH-SHA": 5}, price="12.00")
    body = order_body([(sku, 2)], postal_code=HOLD, customer=_customer(tag))
    oid = (await place(stack.api, body))["order_id"]
    await wait_status(stack.api, oid, "PACKED")

    await shot(page, "console-sign-in") if await page.goto("/console/sign-in") else None
    await _sign_in(page, staff_key)
    await page.get_by_label("Search").fill(f"Ana {tag}")
    await page.get_by_role("button", name="Apply").click()
    row = page.get_by_role("row").filter(has_text=oid)
    await expect(row).to_contain_text("PACKED")
    await expect(row).to_contain_text("authorized")
    await shot(page, "console-orders")
    # The filters live in the URL: the same link shows the same list.
    assert f"q=Ana+{tag}" in page.url

    await row.get_by_role("link", name=oid).click()
    await expect(page.get_by_role("heading", name=f"Order {oid}")).to_contain_text("PACKED")
    await expect(page.get_by_role("table", name="Books")).to_contain_text("Kept")
    await shot(page, "console-order")
    await page.get_by_role("button", name="Cancel order").click()
    await expect(page.get_by_role("heading", name=f"Cancel order {oid}?")).to_be_visible()
    await shot(page, "console-confirm")
    await page.get_by_label("Reason").fill("customer called")
    await page.get_by_role("button", name="Confirm").click()
    await expect(page.get_by_role("status")).to_contain_text("Done: cancel")
    await expect(page.get_by_role("heading", name=f"Order {oid}")).to_contain_text("CANCELLED")

    # PostgreSQL and the payment gateway agree with what the page says.
    assert await stack.sql("select status from orders where order_id=:o", o=oid) == [("CANCELLED",)]
    assert await stack.sql("select status from payments where order_id=:o", o=oid) == [("voided",)]
    assert await stack.stock(sku) == {"WH-SHA": (5, 0)}
    ledger = (await stack.payment.get("/_admin/ledger")).json()
    auth = next(a for a in ledger["authorizations"] if a["order_id"] == oid)
    assert auth["status"] == "voided" and not auth["captures"]
    view = (await stack.api.get(f"/orders/{oid}")).json()
    cancelled = next(h for h in view["history"] if h["kind"] == "status:CANCELLED")
    assert cancelled["actor"] == "staff:tests" and cancelled["detail"] == "customer called"


async def test_staff_approve_an_order_held_for_review(
    page: Page, stack: Stack, staff_key: str
) -> None:
    # Over the review threshold the whole test run uses (100000).
    sku = await stack.add_product({"WH-SHA": 2}, price="150000.00")
    oid = (await place(stack.api, order_body([(sku, 1)], postal_code=HOLD)))["order_id"]
    await wait_status(stack.api, oid, "PENDING_REVIEW")

    await _sign_in(page, staff_key)
    await page.goto(f"/console/orders/{oid}")
    await expect(page.get_by_role("heading", name=f"Order {oid}")).to_contain_text("PENDING_REVIEW")
    await page.get_by_role("button", name="Approve").click()
    await page.get_by_label("Note").fill("known customer")
    await page.get_by_role("button", name="Confirm").click()
    await expect(page.get_by_role("status")).to_contain_text("Done: approve")
    view = await wait_status(stack.api, oid, "PACKED")
    approved = next(h for h in view["history"] if h["kind"] == "review_approved")
    assert approved["actor"] == "staff:tests" and approved["detail"] == "known customer"
    assert Decimal(view["books"]["authorized"]) == Decimal(view["totals"]["total"])
    await stack.api.post(f"/orders/{oid}/cancel", json={})


async def test_a_customer_sees_only_its_own_orders(
    page: Page, stack: Stack, customer_id: str, customer_key: str
) -> None:
    mine = (await place(stack.api, order_body(customer_id=customer_id, postal_code=HOLD)))[
        "order_id"
    ]
    theirs = (await place(stack.api, order_body(customer_id="C-1001", postal_code=HOLD)))[
        "order_id"
    ]
    await wait_status(stack.api, mine, "PACKED")

    await _sign_in(page, customer_key)
    await expect(page.get_by_role("heading", name="My orders")).to_be_visible()
    await expect(page.get_by_role("link", name=mine)).to_be_visible()
    await expect(page.get_by_role("link", name=theirs)).to_have_count(0)
    # Asking for another customer's orders, or one of them, shows nothing of theirs.
    await page.goto("/console/orders?customer_id=C-1001")
    await expect(page.get_by_role("link", name=theirs)).to_have_count(0)
    response = await page.goto(f"/console/orders/{theirs}")
    assert response is not None and response.status == 404
    await page.goto(f"/console/orders/{mine}")
    await expect(page.get_by_role("button", name="Cancel order")).to_be_visible()
    await expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    await shot(page, "console-customer-order")
    for oid in (mine, theirs):
        await stack.api.post(f"/orders/{oid}/cancel", json={})


async def test_a_forged_form_without_its_token_is_refused(
    page: Page, stack: Stack, staff_key: str
) -> None:
    oid = (await place(stack.api, order_body(postal_code=HOLD)))["order_id"]
    await wait_status(stack.api, oid, "PACKED")
    await _sign_in(page, staff_key)
    # The browser holds a live session; a post that lacks the page's token is still refused.
    forged = await page.request.post(
        f"/console/orders/{oid}/actions/cancel", form={"confirmed": "yes", "reason": "x"}
    )
    assert forged.status == 403
    assert "security token" in await forged.text()
    assert (await stack.api.get(f"/orders/{oid}")).json()["status"] == "PACKED"
    await stack.api.post(f"/orders/{oid}/cancel", json={})


async def test_a_carrier_event_appears_on_the_order_page_live(
    page: Page, stack: Stack, staff_key: str
) -> None:
    oid = (await place(stack.api, order_body(postal_code=HOLD)))["order_id"]
    view = await wait_status(stack.api, oid, "PACKED")
    await _sign_in(page, staff_key)
    await page.goto(f"/console/orders/{oid}")
    heading = page.get_by_role("heading", name=f"Order {oid}")
    await expect(heading).to_contain_text("PACKED")
    # Marks this very page: a reload would lose it.
    await page.evaluate("window.stillTheSamePage = true")

    shipment_id = view["shipments"][-1]["shipment_id"]
    r = await stack.carrier.post(f"/_admin/shipments/{shipment_id}/advance")
    assert r.status_code == 200, r.text
    await expect(heading).to_contain_text("SHIPPED")
    await expect(page.get_by_role("cell", name="PICKED_UP", exact=True)).to_be_visible()
    assert await page.evaluate("window.stillTheSamePage") is True
    await shot(page, "console-order-live")


async def test_staff_edit_lines_with_a_preview_of_the_new_totals(
    page: Page, stack: Stack, staff_key: str
) -> None:
    sku = await stack.add_product({"WH-SHA": 10}, price="20.00")
    body = order_body([(sku, 1)], payment={"method": "bank_transfer"})
    oid = (await place(stack.api, body))["order_id"]
    before = await wait_status(stack.api, oid, "AWAITING_PAYMENT")

    await _sign_in(page, staff_key)
    await page.goto(f"/console/orders/{oid}")
    await page.get_by_role("link", name="Edit lines").click()
    await page.get_by_label(f"Quantity of {sku}").fill("3")
    await page.get_by_role("button", name="Preview").click()
    totals = page.get_by_role("table", name="New totals")
    await expect(totals).to_contain_text("60.00")
    await expect(page.locator(".difference")).to_contain_text("more to authorize")
    await shot(page, "console-edit-lines")
    # Only a preview so far: nothing changed.
    assert (await stack.api.get(f"/orders/{oid}")).json()["version"] == before["version"]
    await page.get_by_role("button", name="Confirm").click()
    await expect(page.get_by_role("status")).to_contain_text("Done: lines")

    view = (await stack.api.get(f"/orders/{oid}")).json()
    assert view["lines"][0]["quantity"] == 3 and view["totals"]["subtotal"] == "60.00"
    edit = next(h for h in view["history"] if h["kind"] == "modified")
    assert edit["actor"] == "staff:tests" and f"1 x {sku} → 3 x {sku}" in edit["detail"]
    assert await stack.stock(sku) == {"WH-SHA": (10, 3)}
    await stack.api.post(f"/orders/{oid}/cancel", json={})


async def test_staff_refund_one_parcel_of_a_split_order(
    page: Page, stack: Stack, staff_key: str
) -> None:
    # One SKU only Shanghai has, one only Rotterdam has: two parcels, both damaged in transit.
    tea = await stack.add_product({"WH-SHA": 5}, price="10.00")
    cups = await stack.add_product({"WH-RTM": 5}, price="30.00")
    body = order_body([(tea, 2), (cups, 1)], postal_code="22222")
    oid = (await place(stack.api, body))["order_id"]

    async def damaged() -> dict:
        return (await stack.api.get(f"/orders/{oid}")).json()  # type: ignore[no-any-return]

    view = await eventually(
        damaged, lambda v: sum(1 for s in v["shipments"] if s["status"] == "damaged") == 2
    )
    await _sign_in(page, staff_key)
    await page.goto(f"/console/orders/{oid}")
    await page.get_by_role("button", name="Refund parcel").click()
    await page.get_by_label("Note").fill("broken cups")
    await page.get_by_role("button", name="Confirm").click()
    await expect(page.get_by_role("status")).to_contain_text("Done: refund")
    await expect(page.get_by_role("cell", name="refunded", exact=True)).to_have_count(1)

    after = (await stack.api.get(f"/orders/{oid}")).json()
    refunded = [s for s in after["shipments"] if s["status"] == "refunded"]
    assert len(refunded) == 1 and after["open_exception"]  # the other parcel is still open
    ledger = (await stack.payment.get("/_admin/ledger")).json()
    auth = next(a for a in ledger["authorizations"] if a["order_id"] == oid)
    assert [Decimal(x["amount"]) for x in auth["refunds"]] == [Decimal(refunded[0]["captured"])]
    assert Decimal(after["books"]["refunded"]) == Decimal(refunded[0]["captured"])
    assert len(view["shipments"]) == 2


async def test_staff_approve_several_orders_at_once_and_see_what_each_did(
    page: Page, stack: Stack, staff_key: str
) -> None:
    tag = f"BULK{uuid.uuid4().hex[:6].upper()}"
    big = await stack.add_product({"WH-SHA": 4}, price="150000.00")
    held = [
        (await place(stack.api, order_body([(big, 1)], postal_code=HOLD, customer=_customer(tag))))[
            "order_id"
        ]
        for _ in range(2)
    ]
    small = (await place(stack.api, order_body(postal_code=HOLD, customer=_customer(tag))))[
        "order_id"
    ]
    for oid in held:
        await wait_status(stack.api, oid, "PENDING_REVIEW")
    await wait_status(stack.api, small, "PACKED")

    await _sign_in(page, staff_key)
    await page.goto(f"/console/orders?q=Ana+{tag}")
    for oid in [*held, small]:
        await page.get_by_label(f"Select {oid}").check()
    await page.get_by_role("button", name="Approve selected").click()
    await page.get_by_role("button", name="Confirm").click()
    summary = page.get_by_role("table", name="What each order did")
    for oid in held:
        await expect(summary.get_by_role("row").filter(has_text=oid)).to_contain_text("done")
    refused = summary.get_by_role("row").filter(has_text=small)
    await expect(refused).to_contain_text("refused")
    await expect(refused).to_contain_text("not_pending_review")
    await shot(page, "console-bulk")
    for oid in held:
        view = await wait_status(stack.api, oid, "PACKED")
        assert any(h["kind"] == "review_approved" for h in view["history"])
    for oid in [*held, small]:
        await stack.api.post(f"/orders/{oid}/cancel", json={})


async def test_staff_save_a_filter_that_every_staff_member_finds(
    page: Page, stack: Stack, staff_key: str, admin_key: str
) -> None:
    tag = f"PRE{uuid.uuid4().hex[:6].upper()}"
    oid = (await place(stack.api, order_body(postal_code=HOLD, customer=_customer(tag))))[
        "order_id"
    ]
    await wait_status(stack.api, oid, "PACKED")
    await _sign_in(page, staff_key)
    await page.goto("/console/orders")
    await page.get_by_label("Search").fill(f"Ana {tag}")
    await page.get_by_role("checkbox", name="PACKED", exact=True).check()
    await page.get_by_role("button", name="Apply").click()
    await page.get_by_label("Name of this filter").fill(f"packed for {tag}")
    await page.get_by_role("button", name="Save filter").click()

    # Another staff member (an admin key here) finds it and gets the same list.
    await page.context.clear_cookies()
    await _sign_in(page, admin_key)
    await page.get_by_role("link", name=f"packed for {tag}").click()
    assert "status=PACKED" in page.url and tag in page.url
    await expect(page.get_by_role("link", name=oid)).to_be_visible()
    await expect(page.get_by_role("checkbox", name="PACKED", exact=True)).to_be_checked()
    await page.get_by_role("button", name=f"Delete saved filter packed for {tag}").click()
    await expect(page.get_by_role("link", name=f"packed for {tag}")).to_have_count(0)
    await stack.api.post(f"/orders/{oid}/cancel", json={})


async def test_staff_open_a_customer_from_an_order_and_add_a_note(
    page: Page, stack: Stack, staff_key: str
) -> None:
    tag = f"CUS{uuid.uuid4().hex[:6].upper()}"
    oid = (await place(stack.api, order_body(postal_code=HOLD, customer=_customer(tag))))[
        "order_id"
    ]
    await wait_status(stack.api, oid, "PACKED")

    await _sign_in(page, staff_key)
    await page.goto(f"/console/orders/{oid}")
    await page.get_by_role("link", name=f"C-{tag}", exact=True).click()
    await expect(page.get_by_role("heading", name=f"Ana {tag}")).to_be_visible()
    orders = page.get_by_role("table", name="Orders of this customer")
    await expect(orders.get_by_role("row").filter(has_text=oid)).to_contain_text("PACKED")
    await expect(page.get_by_role("table", name="Value")).to_contain_text("Loyalty points")
    await page.get_by_label("Note", exact=True).fill(f"prefers evening calls {tag}")
    await page.get_by_label("About order (optional)").select_option(oid)
    await page.get_by_role("button", name="Add note").click()
    await expect(page.get_by_role("status")).to_contain_text("Done: note added")
    notes = page.get_by_role("list", name="Staff notes")
    await expect(notes).to_contain_text(f"prefers evening calls {tag}")
    await expect(notes).to_contain_text("by staff:tests")
    await shot(page, "console-customer")

    rows = await stack.sql(
        "select author, text, order_id from customer_notes where customer_id=:c", c=f"C-{tag}"
    )
    assert rows == [("staff:tests", f"prefers evening calls {tag}", oid)]
    # The API's own picture shows the same note in the communication log.
    picture = (await stack.api.get(f"/customers/C-{tag}")).json()
    assert [e["text"] for e in picture["communication"] if e["type"] == "note"] == [
        f"prefers evening calls {tag}"
    ]
    await stack.api.post(f"/orders/{oid}/cancel", json={})


async def test_the_alerts_inbox_lists_an_order_held_for_review(
    page: Page, stack: Stack, staff_key: str
) -> None:
    # Over the review threshold the whole test run uses (100000).
    sku = await stack.add_product({"WH-SHA": 2}, price="150000.00")
    oid = (await place(stack.api, order_body([(sku, 1)], postal_code=HOLD)))["order_id"]
    await wait_status(stack.api, oid, "PENDING_REVIEW")

    async def open_alerts() -> list[dict]:
        r = await stack.api.get("/alerts", params={"order_id": oid, "open": "true"})
        return r.json()["items"]  # type: ignore[no-any-return]

    await eventually(open_alerts, lambda items: any(a["kind"] == "review_needed" for a in items))

    await _sign_in(page, staff_key)
    await page.get_by_role("link", name="Alerts").click()
    await page.get_by_label("Kind").select_option("review_needed")
    await page.get_by_label("Severity").select_option("warning")
    await page.get_by_role("button", name="Apply").click()
    # The filters live in the URL: the same link shows the same inbox.
    assert "kind=review_needed" in page.url and "severity=warning" in page.url
    row = page.get_by_role("table", name="Open alerts").get_by_role("row").filter(has_text=oid)
    await expect(row).to_contain_text("review_needed")
    await expect(row).to_contain_text("held for review")
    await shot(page, "console-alerts")
    # Another severity leaves it out.
    await page.goto("/console/alerts?kind=review_needed&severity=critical")
    await expect(page.get_by_role("link", name=oid)).to_have_count(0)

    await page.goto("/console/alerts?kind=review_needed")
    await page.get_by_role("link", name=oid).click()
    await expect(page.get_by_role("heading", name=f"Order {oid}")).to_contain_text("PENDING_REVIEW")
    await stack.api.post(f"/orders/{oid}/cancel", json={})


async def test_a_customer_gets_no_customer_or_alert_pages(
    page: Page, stack: Stack, customer_id: str, customer_key: str
) -> None:
    await _sign_in(page, customer_key)
    nav = page.get_by_role("navigation", name="Main")
    await expect(nav.get_by_role("link", name="My orders")).to_be_visible()
    await expect(nav.get_by_role("link", name="Customers")).to_have_count(0)
    await expect(nav.get_by_role("link", name="Alerts")).to_have_count(0)
    for url in ("/console/customers", f"/console/customers/{customer_id}", "/console/alerts"):
        response = await page.goto(url)
        assert response is not None and response.status == 403, url
        await expect(page.get_by_role("alert")).to_contain_text("this page is for staff")
