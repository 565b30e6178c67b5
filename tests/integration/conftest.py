"""Each integration test gets its own task queue, worker and API client on the session-wide
stack of tests/real_stack.py (one real Temporal dev server, one real PostgreSQL, the stand-ins)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.app import create_app
from orderflow.settings import Settings
from providers.smtp_standin import SmtpStandin
from tests.real_stack import (
    PAYMENT_WEBHOOK_SECRET,
    WEBHOOK_SECRET,
    ServerThread,
    Stack,
    free_port,
    standin_clients,
)

# Integration tests import these from here.
__all__ = [
    "PAYMENT_WEBHOOK_SECRET",
    "WEBHOOK_SECRET",
    "ServerThread",
    "Stack",
    "free_port",
    "standin_clients",
]


@pytest.fixture
async def make_stack(
    base_settings: Settings,
    api_server: ServerThread,
    temporal_client: Client,
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpStandin,
    staff_key: str,
) -> AsyncIterator[Any]:
    """Builds a stack with its own task queue; keyword arguments override settings.

    Its `api` client calls with a staff key; `api_as` gives clients with other keys."""
    made: list[Stack] = []

    async def make(start_worker: bool = True, **overrides: Any) -> Stack:
        settings = base_settings.model_copy(
            update={"task_queue": f"orders-{uuid.uuid4().hex[:8]}", **overrides}
        )
        app = create_app(settings, client=temporal_client, sessions=sessions)
        stack = Stack(
            settings=settings,
            api=httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://api",
                timeout=60,
                headers={"Authorization": f"Bearer {staff_key}"},
            ),
            app=app,
            staff_key=staff_key,
            client=temporal_client,
            sessions=sessions,
            **standin_clients(settings, smtp_server),
        )
        made.append(stack)
        if start_worker:
            await stack.start_worker()
        return stack

    yield make
    for stack in made:
        await stack.aclose()
