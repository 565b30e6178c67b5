"""Mounts the console on the API's app: its pages, its own static files, its refusals."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from api.errors import ApiError
from console import alerts, customers
from console.pages import render, router
from console.session import ForgedForm


def install_console(app: FastAPI) -> None:
    """Serve the console under /console (no CDN: every file is ours)."""
    app.mount(
        "/console/static",
        StaticFiles(directory=Path(__file__).parent / "static"),
        name="console-static",
    )
    app.include_router(router)
    app.include_router(customers.router)
    app.include_router(alerts.router)

    @app.exception_handler(ForgedForm)
    async def _forged(request: Request, _: ForgedForm) -> Response:
        refusal = ApiError(
            403,
            "csrf",
            "this form did not come from this console (its security token is missing or "
            "wrong): reload the page and try again",
        )
        return render(request, "error.html", 403, title="Refused", error=refusal)
