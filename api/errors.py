"""One error shape for every refusal: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from api.refusal_log import note_refusal


class ApiError(Exception):
    """A refusal with an HTTP status, a stable code and a human message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
        noted: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers
        # The order's workflow already wrote this refusal into the order's history.
        self.noted = noted


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    """The body of every refusal."""

    error: ErrorDetail


# What each refusal status means, as the API documentation says it.
ERROR_MEANINGS = {
    400: "Malformed request: the body is not JSON, is nested too deeply, or a cursor is bad",
    401: "No API key, or an unknown or revoked one",
    403: "The key's role may not do this",
    404: "No such resource, or one this key may not see",
    409: "Refused by the state the resource is in",
    412: "If-Match names a version of the order that is no longer current",
    413: "The request body is over the size limit",
    422: "The request does not match the schema, or a business rule refuses it",
    503: (
        "PostgreSQL or Temporal cannot be reached, or the order could not take the change; "
        "`code` says which, `Retry-After` when to try again"
    ),
    504: (
        "The order has not answered in time: the change may still be made; repeat the request "
        "with the same Idempotency-Key to get its outcome"
    ),
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` documenting refusals with these statuses in the one error shape."""
    return {
        status: {"model": ErrorResponse, "description": ERROR_MEANINGS[status]}
        for status in statuses
    }


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The JSON body of an error response."""
    return {"error": {"code": code, "message": message, "details": details}}


def _summary(errors: list[Any]) -> str:
    """The schema errors in one line, for the order's history."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg', '')}" for e in errors
    )[:1000]


def _clean(errors: list[Any]) -> list[dict[str, Any]]:
    # Echoing the raw input back could be huge or hostile; the location and reason suffice.
    return [
        {
            "loc": [str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": e.get("type"),
        }
        for e in errors
    ]


# Refusals raised by FastAPI and Starlette themselves. Their only 400 is a body that cannot be
# parsed (a JSON number too long to read, nesting too deep).
HTTP_ERROR_CODES = {
    400: "malformed_json",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}


def install_error_handlers(app: FastAPI) -> None:
    """Map every refusal to the one error shape."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        if not exc.noted:
            await note_refusal(request, exc.status, exc.code, exc.message)
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details),
            status_code=exc.status,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            await note_refusal(request, 400, "malformed_json", "the body is not valid JSON")
            return JSONResponse(
                error_body("malformed_json", "the request body is not valid JSON", _clean(errors)),
                status_code=400,
            )
        await note_refusal(request, 422, "invalid_request", _summary(errors))
        return JSONResponse(
            error_body("invalid_request", "the request does not match the schema", _clean(errors)),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_ERROR_CODES.get(exc.status_code, "http_error")
        headers = exc.headers
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=headers
        )


def allowed_methods(request: Request) -> str:
    """The methods of the resource at the request's path, for the `Allow` header of a 405.

    Starlette names only the first route whose path matches; a resource such as /orders is served
    by several. A literal path (/inventory/restock) is its own resource, not a value of a
    parameter (/inventory/{sku}), so the routes with the fewest parameters win."""
    path = request.url.path
    matching = [
        r
        for r in request.app.router.routes
        if isinstance(r, Route) and r.methods and r.path_regex.match(path)
    ]
    fewest = min((len(r.param_convertors) for r in matching), default=0)
    methods = {m for r in matching if len(r.param_convertors) == fewest for m in r.methods or ()}
    return ", ".join(sorted(methods))
