"""Printable documents of an order: confirmation, invoice, packing slip (§6)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from api import documents
from api.auth import CallerDep, check_order
from api.deps import SessionDep, TemporalDep
from api.order_actions import current_view

router = APIRouter(tags=["documents"])


@router.get(
    "/orders/{order_id}/documents/{kind}",
    responses={200: {"content": {"application/pdf": {}, "text/html": {}}}},
)
async def order_document(
    order_id: str,
    kind: Literal["confirmation", "invoice", "packing-slip", "credit-note"],
    session: SessionDep,
    client: TemporalDep,
    caller: CallerDep,
    fmt: Annotated[Literal["pdf", "html"], Query(alias="format")] = "pdf",
) -> Response:
    """The document as PDF (default) or HTML."""
    await check_order(session, caller, order_id)
    doc = documents.build(await current_view(session, client, order_id), kind)
    name = f"{doc.number}.{fmt}"
    if fmt == "html":
        return Response(documents.to_html(doc), media_type="text/html; charset=utf-8")
    return Response(
        documents.to_pdf(doc),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )
