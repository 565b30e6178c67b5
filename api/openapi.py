"""The OpenAPI document: every operation lists the refusals it can answer, in the one error shape.

The statuses that follow from an operation's shape are added here, so a new route is documented
right without repeating them; routes name only the refusals of their own (409, ...)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.errors import ERROR_MEANINGS, ErrorResponse

REF = "#/components/schemas/ErrorResponse"
CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# FastAPI's own validation error shape, which this API never answers with.
FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


def _refusals(method: str, operation: dict[str, Any]) -> set[int]:
    params = operation.get("parameters", [])
    # The input guards run on every request (api/input_guards.py), and every operation needs
    # PostgreSQL or Temporal, either of which may be down (api/unavailable.py).
    statuses = {422, 503}
    if method.upper() in CHANGING:
        # A change handed to an order that does not answer in time (api/order_calls.py).
        statuses.add(504)
    if "requestBody" in operation:
        # Any body may be malformed JSON or too big.
        statuses |= {400, 413}
    if any(p["in"] == "path" for p in params):
        # A path parameter names a resource, which may not exist.
        statuses.add(404)
    if operation.get("security"):
        statuses |= {401, 403}
    return statuses


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": ERROR_MEANINGS[status],
        "content": {"application/json": {"schema": {"$ref": REF}}},
    }


def document_refusals(schema: dict[str, Any]) -> None:
    """Add the error responses each operation can give, and put the API's error shape in place
    of FastAPI's validation error."""
    for path_item in schema.get("paths", {}).values():
        for method, operation in path_item.items():
            responses = operation.setdefault("responses", {})
            for status in _refusals(method, operation):
                documented = responses.get(str(status))
                if documented is None or FASTAPI_VALIDATION[0] in str(documented):
                    responses[str(status)] = _error_response(status)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in FASTAPI_VALIDATION:
        components.pop(name, None)
    error = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(error.pop("$defs", {}))
    components["ErrorResponse"] = error


def install_openapi(app: FastAPI) -> None:
    """Serve the OpenAPI document with the refusals documented."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            document_refusals(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
