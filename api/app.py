"""The FastAPI application: a thin front that starts, edits and reads orders."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.auth import ADMIN, STAFF, get_caller
from api.docs_assets import install_docs
from api.errors import error_body, install_error_handlers
from api.idempotency import install_idempotency
from api.input_guards import refuse_nul_characters, refuse_repeated_parameters
from api.limits import BodyLimitMiddleware
from api.openapi import install_openapi
from api.routers import (
    admin,
    alerts,
    customers,
    documents,
    health,
    imports,
    inventory,
    merges,
    orders,
    purchasing,
    reports,
    returns,
    webhooks,
)
from api.unavailable import install_unavailable_handlers
from console.app import install_console
from orderflow.db import make_engine, make_sessions
from orderflow.settings import Settings
from orderflow.temporal import connect

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    client: Client | None = None,
    sessions: async_sessionmaker[AsyncSession] | None = None,
) -> FastAPI:
    """Build the app; a client and sessions given here are used instead of connecting."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = None
        if sessions is None:
            engine = make_engine(settings.database_url)
            app.state.sessions = make_sessions(engine)
        if client is None:
            app.state.temporal = await _temporal_client(settings)
        try:
            yield
        finally:
            if engine is not None:
                await engine.dispose()

    app = FastAPI(
        title="orderflow",
        version="0.1.0",
        description="Every order is a durable Temporal workflow.",
        lifespan=lifespan,
        # Served by install_docs from our own files, not from a CDN.
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(refuse_nul_characters), Depends(refuse_repeated_parameters)],
    )
    app.state.settings = settings
    app.state.sessions = sessions
    app.state.temporal = client
    install_error_handlers(app)
    install_unavailable_handlers(app)
    install_openapi(app)
    install_docs(app)

    @app.exception_handler(RecursionError)
    async def _too_deep(_: Request, __: RecursionError) -> JSONResponse:
        return JSONResponse(
            error_body("malformed_json", "the request body is nested too deeply"),
            status_code=400,
        )

    install_idempotency(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Customers reach their own orders through these; each route checks what it touches.
    for r in (orders.router, customers.router, documents.router):
        app.include_router(r, dependencies=[Depends(get_caller)])
    for r in (
        merges.router,
        imports.router,
        returns.router,
        inventory.router,
        purchasing.router,
        alerts.router,
        reports.router,
    ):
        app.include_router(r, dependencies=[STAFF])
    app.include_router(admin.router, dependencies=[ADMIN])
    # Open: the health check, and webhooks, which carry their own HMAC signature.
    for r in (webhooks.router, health.router):
        app.include_router(r)
    # The browser console: its pages sign callers in with the same API keys.
    install_console(app)
    return app


async def _temporal_client(settings: Settings) -> Client:
    """Connect now; with Temporal down, start anyway with a client that connects on first use,
    so the API answers what needs only PostgreSQL and 503 for the rest until Temporal is back."""
    try:
        return await connect(settings)
    except RuntimeError as exc:
        log.warning("Temporal at %s is not reachable (%s)", settings.temporal_address, exc)
        return await connect(settings, lazy=True)
