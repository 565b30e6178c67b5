"""The end-to-end tests: Debian's chromium, driven by Playwright, against the real stack on real
ports (tests/real_stack.py): the API served by uvicorn (`api_server`), a worker on that API's task
queue, the Temporal dev server, PostgreSQL and the stand-ins."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, Page, Playwright, async_playwright, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.app import create_app
from models.api_keys import Role, create_key
from orderflow.settings import Settings
from providers.smtp_standin import SmtpStandin
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS
from tests.real_stack import ServerThread, Stack, standin_clients

# A page may be slow to render on a busy machine; auto-waiting assertions wait up to this long
# for what they expect, and pass as soon as it is there.
expect.set_options(timeout=20_000)


@pytest.fixture(scope="session")
async def playwright_driver() -> AsyncIterator[Playwright]:
    async with async_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
async def browser(playwright_driver: Playwright) -> AsyncIterator[Browser]:
    """Debian's chromium, headless, with a fresh profile of its own."""
    browser = await playwright_driver.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    await browser.close()


@pytest.fixture
async def page(browser: Browser, api_server: ServerThread) -> AsyncIterator[Page]:
    """A page in a fresh browser context (no cookies), whose relative URLs go to the API."""
    context = await browser.new_context(
        base_url=api_server.url, viewport={"width": 1280, "height": 800}
    )
    page = await context.new_page()
    yield page
    await context.close()


@pytest.fixture(scope="package")
async def stack(
    base_settings: Settings,
    api_server: ServerThread,
    temporal_client: Client,
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpStandin,
    staff_key: str,
) -> AsyncIterator[Stack]:
    """The stack behind the API on its real port, with one worker on that API's task queue for
    all the end-to-end tests (stopped after them, so no other test shares it).

    Its `api` client calls the real port with the staff key; `api_as` calls the same settings
    in process."""
    standins = standin_clients(base_settings, smtp_server)
    stack = Stack(
        settings=base_settings,
        api=httpx.AsyncClient(
            base_url=api_server.url,
            timeout=60,
            headers={"Authorization": f"Bearer {staff_key}"},
        ),
        app=create_app(base_settings, client=temporal_client, sessions=sessions),
        staff_key=staff_key,
        client=temporal_client,
        sessions=sessions,
        payment=standins["payment"],
        carrier=standins["carrier"],
        mail=standins["mail"],
    )
    await stack.start_worker()
    yield stack
    await stack.aclose()


@pytest.fixture(scope="session")
def customer_id() -> str:
    """A customer only this run's end-to-end tests place orders for."""
    return f"C-E2E-{uuid.uuid4().hex[:8].upper()}"


@pytest.fixture(scope="session")
async def customer_key(sessions: async_sessionmaker[AsyncSession], customer_id: str) -> str:
    async with sessions.begin() as s:
        _, token = await create_key(s, "e2e-customer", Role.CUSTOMER, customer_id)
    return token


@pytest.fixture(scope="session")
async def admin_key(sessions: async_sessionmaker[AsyncSession]) -> str:
    async with sessions.begin() as s:
        _, token = await create_key(s, "e2e-admin", Role.ADMIN)
    return token
