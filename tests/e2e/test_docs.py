"""/docs and /redoc render in a real browser with nothing loaded from another host."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.e2e.browser import off_host, record_requests, shot

# Every script, style and icon a docs page names.
LINKED = re.compile(r'(?:src|href)="([^"]*)"')


async def assert_links_stay_here(page: Page, path: str) -> None:
    """The page as served names only paths of this app, never a URL with a host."""
    html = await (await page.request.get(path)).text()
    linked = LINKED.findall(html)
    assert linked
    assert [url for url in linked if not url.startswith("/") or url.startswith("//")] == []


async def test_swagger_ui_lists_the_operations_from_our_own_files(page: Page) -> None:
    requests = record_requests(page)

    await page.goto("/docs")

    place_order = page.locator(".opblock-post .opblock-summary-path[data-path='/orders']")
    await expect(place_order).to_be_visible()
    await expect(
        page.locator(".opblock-get .opblock-summary-path[data-path='/healthz']")
    ).to_be_visible()
    await shot(page, "docs")
    assert any(url.endswith("/docs-assets/swagger-ui-bundle.js") for url in requests)
    assert off_host(requests) == []
    await assert_links_stay_here(page, "/docs")


async def test_redoc_renders_the_api_from_our_own_files(page: Page) -> None:
    requests = record_requests(page)

    await page.goto("/redoc")

    await expect(page.get_by_role("heading", level=1)).to_contain_text("orderflow")
    await expect(
        page.get_by_role("heading", name=re.compile(r" Post Order$"), level=2)
    ).to_be_visible()
    await shot(page, "redoc")
    assert any(url.endswith("/docs-assets/redoc.standalone.js") for url in requests)
    assert off_host(requests) == []
    await assert_links_stay_here(page, "/redoc")
