"""Swagger UI (`/docs`) and ReDoc (`/redoc`) served with their scripts and styles from this app,
so the API's docs open with no internet and the pages load nothing from another host.

The dist files come from the fastapi-offline package, which ships Swagger UI's and ReDoc's
bundles; FastAPI's own pages would fetch them, a favicon and ReDoc's fonts from CDNs."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs-assets"
ASSETS_PACKAGE = ("fastapi_offline", "static")
# The browser may load the pages' parts from this app only, whatever a bundle asks for.
# Inline code is FastAPI's page setup and the bundles' own styles; blob: is ReDoc's worker.
ONLY_FROM_HERE = "default-src 'self' 'unsafe-inline' data: blob:"
# ReDoc's bundle shows its vendor's logo from a CDN in the menu, with no option to turn it off.
# With an empty source the logo's own error handler hides it, and the browser asks for nothing.
REDOC_CDN_LOGO = b'"https://cdn.redoc.ly/redoc/logo-mini.svg"'


@cache
def redoc_bundle() -> bytes:
    """ReDoc's standalone bundle as the package ships it, less the logo from its CDN."""
    bundle = files(ASSETS_PACKAGE[0]).joinpath(ASSETS_PACKAGE[1], "redoc.standalone.js")
    return bundle.read_bytes().replace(REDOC_CDN_LOGO, b'""')


def install_docs(app: FastAPI) -> None:
    """Serve `/docs` and `/redoc` (open, like FastAPI's own) and the files they load.

    The app must be made with `docs_url=None, redoc_url=None`, so these take their place."""
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url or f"{DOCS_URL}/oauth2-redirect"

    # Before the mount, so this one answers for the bundle of the same name.
    @app.get(f"{ASSETS_URL}/redoc.standalone.js", include_in_schema=False)
    async def redoc_script() -> Response:
        return Response(redoc_bundle(), media_type="text/javascript")

    app.mount(ASSETS_URL, StaticFiles(packages=[ASSETS_PACKAGE]), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        # Behind a proxy that serves the API under a prefix, the pages' links keep it.
        root = request.scope.get("root_path", "")
        return _only_from_here(
            get_swagger_ui_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                oauth2_redirect_url=f"{root}{oauth2_redirect_url}",
                swagger_ui_parameters=app.swagger_ui_parameters,
            )
        )

    @app.get(oauth2_redirect_url, include_in_schema=False)
    async def swagger_ui_oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _only_from_here(
            get_redoc_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                with_google_fonts=False,
            )
        )


def _only_from_here(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = ONLY_FROM_HERE
    return page
