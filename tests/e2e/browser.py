"""Debian's chromium as the end-to-end tests launch it, and what they keep of a page."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from playwright.async_api import Page, Request

# Playwright's own browser download cannot work here: .ci/run installs Debian's chromium.
CHROMIUM = "/usr/bin/chromium"
# Headless as root, with nothing of the browser's own reaching out to the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Kept by CI as an artifact, ignored by git.
SCREENSHOTS = Path(__file__).parent / "screenshots"
LOCAL_HOSTS = frozenset({"127.0.0.1"})
IN_PAGE = frozenset({"data", "blob"})


async def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as tests/e2e/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=path, full_page=True)
    return path


def record_requests(page: Page) -> list[str]:
    """The URLs of every request the page makes from now on, filled in as they are made."""
    urls: list[str] = []

    def keep(request: Request) -> None:
        urls.append(request.url)

    page.on("request", keep)
    return urls


def off_host(urls: list[str]) -> list[str]:
    """The URLs that name a host other than this machine (data: and blob: stay in the page)."""
    return [
        url
        for url in urls
        if urlsplit(url).scheme not in IN_PAGE and urlsplit(url).hostname not in LOCAL_HOSTS
    ]
