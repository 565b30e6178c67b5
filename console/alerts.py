"""The console's alerts inbox: open alerts, newest first, each linking to its order.

It reads through the same function as GET /alerts?open=true. The API has no way to
acknowledge or resolve an alert by itself (an alert closes when the order's trouble is dealt
with, e.g. a refund), so the inbox offers no such button: each alert leads to its order, where
the actions are.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from console.customers import staff_caller
from console.pages import render
from models import orders_repo

router = APIRouter(prefix="/console", include_in_schema=False)

# What the API lets one call list (GET /alerts caps `limit` at this).
MOST = 500
SEVERITIES = ("critical", "warning", "info")


@router.get("/alerts", response_class=HTMLResponse)
async def alerts_page(request: Request) -> Response:
    """Open alerts, filtered by kind and severity; the filters live in the URL."""
    caller = await staff_caller(request)
    if isinstance(caller, Response):
        return caller
    async with request.app.state.sessions() as session:
        open_alerts = await orders_repo.list_alerts(session, None, True, MOST)
    kinds = sorted({a["kind"] for a in open_alerts})
    q = request.query_params
    kind = q.get("kind", "")[:40]
    severity = q.get("severity", "") if q.get("severity") in SEVERITIES else ""
    items = [
        a
        for a in open_alerts
        if (not kind or a["kind"] == kind) and (not severity or a["severity"] == severity)
    ]
    if kind and kind not in kinds:
        kinds.append(kind)
    return render(
        request,
        "alerts.html",
        title="Alerts",
        items=items,
        kinds=kinds,
        severities=SEVERITIES,
        kind=kind,
        severity=severity,
        total=len(open_alerts),
        capped=len(open_alerts) == MOST,
    )
