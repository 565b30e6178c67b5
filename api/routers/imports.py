"""Order import through the API: a CSV or JSON-lines file in the request body (§1)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from api.auth import ActorDep
from api.deps import SessionsDep, SettingsDep, TemporalDep
from api.errors import ApiError
from api.importing import import_orders
from models.order_import import parse

router = APIRouter(tags=["imports"])


# The file is read raw (it may be larger than one JSON document could sensibly be), so its
# media types are declared here for the OpenAPI document.
FILE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-ndjson": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}


@router.post("/imports", openapi_extra=FILE_BODY)
async def import_file(
    request: Request,
    sessions: SessionsDep,
    client: TemporalDep,
    settings: SettingsDep,
    actor: ActorDep,
    fmt: Annotated[Literal["csv", "jsonl"], Query(alias="format")] = "jsonl",
) -> dict[str, Any]:
    """Create the orders in a file (the body, up to the body size limit; larger files go in
    parts, as `orderflow import` sends them). Re-importing is harmless: the channel's order id
    finds the order made the first time."""
    try:
        text = (await request.body()).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(400, "not_utf8", "the file must be UTF-8 text") from None
    # A CSV without even a header line would otherwise come back as one rejected row.
    rows = parse(text, fmt) if text.strip() else []
    if not rows:
        raise ApiError(422, "empty_import", "the file holds no orders")
    return await import_orders(sessions, client, settings, rows, f"import:{actor}")
