"""The browser reaches the real stack: the API on its real port, and the worker on that API's
task queue that runs what the API starts."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.integration.helpers import order_body, place, wait_status
from tests.real_stack import Stack


async def test_a_page_opens_the_health_check_on_the_real_port(page: Page) -> None:
    response = await page.goto("/healthz")

    assert response is not None and response.status == 200
    assert (await response.json())["checks"] == {"api": "ok", "postgres": "ok", "temporal": "ok"}
    await expect(page.locator("body")).to_contain_text('"status":"ok"')


async def test_an_order_placed_on_the_real_port_runs_and_its_customer_sees_it(
    page: Page, stack: Stack, customer_id: str, customer_key: str
) -> None:
    sku = await stack.add_product({"WH-SHA": 3})
    order_id = (await place(stack.api, order_body([(sku, 1)], customer_id=customer_id)))["order_id"]
    await wait_status(stack.api, order_id, "COMPLETED")

    await page.set_extra_http_headers({"Authorization": f"Bearer {customer_key}"})
    response = await page.goto(f"/orders/{order_id}")

    assert response is not None and response.status == 200
    await expect(page.locator("body")).to_contain_text(f'"order_id":"{order_id}"')
    await expect(page.locator("body")).to_contain_text('"status":"COMPLETED"')


async def test_only_the_admin_key_opens_the_key_list(
    page: Page, staff_key: str, admin_key: str
) -> None:
    await page.set_extra_http_headers({"Authorization": f"Bearer {staff_key}"})
    refused = await page.goto("/admin/api-keys")
    await page.set_extra_http_headers({"Authorization": f"Bearer {admin_key}"})
    allowed = await page.goto("/admin/api-keys")

    assert refused is not None and refused.status == 403
    assert allowed is not None and allowed.status == 200
    await expect(page.locator("body")).to_contain_text("e2e-admin")
