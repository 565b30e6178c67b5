"""Checks every request passes before its route reads it: what the schema cannot say."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request

from api.errors import ApiError

# A NUL character as a JSON escape: `\u0000` after an even number of backslashes (an odd
# number before it means the backslash itself was escaped, and the text is literal).
JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _no_nul() -> ApiError:
    # PostgreSQL text cannot hold NUL, and no name, address or note needs one.
    return ApiError(422, "nul_character", "text may not contain the NUL character (U+0000)")


async def refuse_nul_characters(request: Request) -> None:
    """422 for a NUL character anywhere in the path, the query or the body."""
    if "\x00" in request.url.path or any(
        "\x00" in name or "\x00" in value for name, value in request.query_params.multi_items()
    ):
        raise _no_nul()
    if request.method in ("POST", "PUT", "PATCH"):
        body = await request.body()
        if b"\x00" in body or JSON_NUL.search(body):
            raise _no_nul()


def _takes_many(schema: dict[str, Any]) -> bool:
    return any(option.get("type") == "array" for option in schema.get("anyOf", [schema]))


async def refuse_repeated_parameters(request: Request) -> None:
    """422 for a one-value query parameter given twice, which FastAPI would quietly read as its
    last value: `?order_id=A&order_id=B` asks something this API cannot answer."""
    names = [name for name, _ in request.query_params.multi_items()]
    repeated = {name for name in names if names.count(name) > 1}
    route = request.scope.get("route")
    if not repeated or route is None:
        return
    operation = request.app.openapi()["paths"].get(route.path, {}).get(request.method.lower(), {})
    once = {
        p["name"]
        for p in operation.get("parameters", [])
        if p["in"] == "query" and not _takes_many(p["schema"])
    }
    if repeated & once:
        raise ApiError(422, "repeated_parameter", f"give {', '.join(sorted(repeated & once))} once")
