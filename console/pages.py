"""The console's pages: sign in, orders, one order and what may be done to it.

Every page reads and every button acts through the same functions as the API's routes
(api.order_actions, models.orders_repo), so the rules and their refusals are the API's own.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates

from api.auth import caller_of, check_order
from api.errors import ApiError
from api.intake import price_lines
from api.order_actions import current_view, update_order
from console import live
from console.session import (
    NotSignedIn,
    check_form,
    form_token,
    set_form_cookie,
    sign_in,
    sign_out,
    signed_in,
)
from models import filter_presets, orders_repo
from models.api_keys import Caller, Role
from models.order import Channel, LineInput, OrderView, PricedOrder
from models.status import EditRefused, OrderStatus, check_cancellable, check_lines_editable
from workflows import contract as c

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(prefix="/console", include_in_schema=False)

PAGE_SIZE = 25
# The longest text a form field keeps (a reason, a note): what the API's bodies allow.
FIELD_LENGTH = 500


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    """A page, with the token its forms carry (and the cookie it derives from, if new)."""
    token, new_cookie = form_token(request)
    response = templates.TemplateResponse(
        request,
        name,
        {"csrf": token, "caller": getattr(request.state, "caller", None), **context},
        status_code=status_code,
    )
    if new_cookie:
        set_form_cookie(request, response, new_cookie)
    return response


def _to_sign_in() -> RedirectResponse:
    return RedirectResponse("/console/sign-in", status_code=303)


@router.get("", response_class=HTMLResponse)
async def home() -> Response:
    return RedirectResponse("/console/orders", status_code=303)


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request) -> Response:
    return render(request, "sign_in.html", title="Sign in")


async def _form(request: Request) -> dict[str, str]:
    """The posted form, each field cut to a sane length. Read here, after the app's checks
    of the raw body (a NUL character is refused before any page sees it)."""
    form = await request.form(max_files=0, max_fields=20)
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    return {k: v[:FIELD_LENGTH] for k, v in fields.items()}


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request) -> Response:
    form = await _form(request)
    check_form(request, form.get("csrf_token"))
    api_key = form.get("api_key", "")
    caller = await caller_of(request, api_key.strip()) if api_key.strip() else None
    if caller is None:
        return render(
            request,
            "sign_in.html",
            status_code=401,
            title="Sign in",
            error="Unknown or revoked API key.",
        )
    response = RedirectResponse("/console/orders", status_code=303)
    sign_in(request, response, api_key.strip())
    return response


@router.post("/sign-out")
async def sign_out_form(request: Request) -> Response:
    check_form(request, (await _form(request)).get("csrf_token"))
    response = _to_sign_in()
    sign_out(response)
    return response


def _day(value: str, end: bool = False) -> datetime | None:
    try:
        d = date.fromisoformat(value)
    except ValueError:
        return None
    return datetime.combine(d, time.max if end else time.min).astimezone()


def _amount(value: str) -> Decimal | None:
    try:
        return Decimal(value) if value else None
    except InvalidOperation:
        return None


@router.get("/orders", response_class=HTMLResponse)
async def orders_page(request: Request) -> Response:
    """Orders with search, filters kept in the URL, and paging."""
    try:
        caller = await signed_in(request)
    except NotSignedIn:
        return _to_sign_in()
    q = request.query_params
    statuses = tuple(s for s in q.getlist("status") if s in OrderStatus.__members__)
    f = orders_repo.OrderFilter(
        customer_id=caller.customer_id or (q.get("customer_id") or None),
        statuses=statuses,
        channel=q.get("channel") if q.get("channel") in {ch.value for ch in Channel} else None,
        created_from=_day(q.get("from", "")),
        created_to=_day(q.get("to", ""), end=True),
        total_min=_amount(q.get("min", "")),
        total_max=_amount(q.get("max", "")),
        q=(q.get("q") or "").strip()[:100] or None,
    )
    if f.q is not None and len(f.q) < 2:
        f.q = None
    async with request.app.state.sessions() as session:
        try:
            items, next_cursor = await orders_repo.search_orders(
                session, f, PAGE_SIZE, q.get("cursor") or None
            )
        except ValueError:
            items, next_cursor = [], None
        presets = [] if caller.customer_id else await filter_presets.all_presets(session)
    kept = [(k, v) for k, v in q.multi_items() if k != "cursor"]
    return render(
        request,
        "orders.html",
        title="My orders" if caller.customer_id else "Orders",
        items=items,
        filters=q,
        statuses=[s.value for s in OrderStatus],
        channels=[ch.value for ch in Channel],
        chosen=set(statuses),
        presets=presets,
        query=urlencode(kept),
        next_url=f"/console/orders?{urlencode([*kept, ('cursor', next_cursor)])}"
        if next_cursor
        else None,
    )


def _actions(view: OrderView, caller: Caller) -> list[str]:
    """The buttons the order's page shows this caller: what the order's own rules allow (the
    workflow checks them again when the button is pressed)."""
    actions = []
    try:
        check_cancellable(view.status)
        actions.append("cancel")
    except EditRefused:
        pass
    if caller.at_least(Role.STAFF) and view.status == OrderStatus.PENDING_REVIEW:
        actions += ["approve", "reject"]
    if caller.at_least(Role.STAFF) and view.open_exception:
        actions += list(EXCEPTION_ACTIONS)
    try:
        check_lines_editable(view.status)
        actions.append("lines")
    except EditRefused:
        pass
    return actions


async def _order(request: Request, caller: Caller, order_id: str) -> OrderView:
    async with request.app.state.sessions() as session:
        await check_order(session, caller, order_id)
        return await current_view(session, request.app.state.temporal, order_id)


async def _caller_and_order(request: Request, order_id: str) -> tuple[Caller, OrderView] | Response:
    """The signed-in caller and the order, or the page to answer instead (sign in, not found)."""
    try:
        caller = await signed_in(request)
    except NotSignedIn:
        return _to_sign_in()
    try:
        return caller, await _order(request, caller, order_id[:40])
    except ApiError as exc:
        return render(request, "error.html", exc.status, title="Not found", error=exc)


@router.get("/orders/{order_id}", response_class=HTMLResponse)
async def order_page(request: Request, order_id: str) -> Response:
    """One order: its money, parcels, related orders, alerts, history, and what may be done."""
    got = await _caller_and_order(request, order_id)
    if isinstance(got, Response):
        return got
    caller, view = got
    return _order_view(request, view, caller, done=request.query_params.get("done"))


@router.get("/orders/{order_id}/lines", response_class=HTMLResponse)
async def lines_page(request: Request, order_id: str) -> Response:
    """The order's lines as a form: change quantities, add a SKU, then preview."""
    got = await _caller_and_order(request, order_id)
    if isinstance(got, Response):
        return got
    _, view = got
    wanted = [LineInput(sku=ln.sku, quantity=ln.quantity) for ln in view.lines]
    return _lines_view(request, view, wanted)


def _lines_view(
    request: Request,
    view: OrderView,
    wanted: list[LineInput],
    preview: PricedOrder | None = None,
    error: ApiError | None = None,
) -> Response:
    difference = preview.totals.total - view.totals.total if preview else None
    return render(
        request,
        "lines.html",
        error.status if error else 200,
        title=f"Edit lines of {view.order_id}",
        view=view,
        wanted=wanted,
        preview=preview,
        difference=difference,
        error=error,
        form_key=secrets.token_urlsafe(12),
    )


def _wanted_lines(form: dict[str, str]) -> list[LineInput]:
    """The lines the form asks for: a quantity per SKU (0 drops it), and one SKU to add."""
    wanted: dict[str, int] = {}
    for name, value in form.items():
        if name.startswith("qty:") and value.strip().isdigit():
            wanted[name[4:]] = int(value.strip())
    added, qty = form.get("add_sku", "").strip(), form.get("add_qty", "").strip()
    if added and qty.isdigit():
        wanted[added] = wanted.get(added, 0) + int(qty)
    return [LineInput(sku=sku, quantity=q) for sku, q in wanted.items() if 0 < q <= 10_000]


@router.post("/orders/{order_id}/lines", response_class=HTMLResponse)
async def lines_form(request: Request, order_id: str) -> Response:
    """Preview the new totals and what more is authorized or released; then, confirmed, make
    the edit as PATCH /orders/{id} does."""
    form = await _form(request)
    check_form(request, form.get("csrf_token"))
    order_id = order_id[:40]
    got = await _caller_and_order(request, order_id)
    if isinstance(got, Response):
        return got
    caller, view = got
    wanted = _wanted_lines(form)
    if not wanted:
        refusal = ApiError(422, "no_lines", "an order needs at least one line; cancel it instead")
        return _lines_view(request, view, wanted, error=refusal)
    if form.get("confirmed") != "yes":
        try:
            async with request.app.state.sessions() as session:
                intake = await orders_repo.find_intake_by_order(session, order_id)
                code = str((intake.workflow_input if intake else {}).get("promotion_code", ""))
                preview = await price_lines(
                    session, wanted, view.ship_to.country, code, view.delivery
                )
        except ApiError as exc:
            return _lines_view(request, view, wanted, error=exc)
        return _lines_view(request, view, wanted, preview=preview)
    given = form.get("version", "")
    req = c.ModifyRequest(
        lines=wanted,
        actor=caller.actor,
        expected_version=int(given) if given.isdigit() and len(given) < 12 else None,
    )
    update_id = f"console:{caller.key_id}:{form.get('form_key', '')[:40]}"
    try:
        async with request.app.state.sessions() as session:
            await update_order(
                session,
                request.app.state.temporal,
                caller,
                order_id,
                c.UPDATE_MODIFY,
                req,
                update_id,
            )
    except ApiError as exc:
        return _lines_view(request, await _order(request, caller, order_id), wanted, error=exc)
    return RedirectResponse(f"/console/orders/{order_id}?done=lines", status_code=303)


@router.get("/orders/{order_id}/live")
async def order_live(request: Request, order_id: str) -> Response:
    """Server-sent events telling the order's page that the order changed."""
    try:
        caller = await signed_in(request)
    except NotSignedIn:
        return Response(status_code=401)
    try:
        await _order(request, caller, order_id[:40])
    except ApiError as exc:
        return Response(status_code=exc.status)
    seen = live.parse_stamp(request.query_params.get("seen", ""))
    return StreamingResponse(
        live.changes(request.app.state.sessions, order_id[:40], seen),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store"},
    )


def _order_view(
    request: Request,
    view: OrderView,
    caller: Caller,
    done: str | None = None,
    error: ApiError | None = None,
    confirm: str | None = None,
    reason: str = "",
) -> Response:
    return render(
        request,
        "order.html",
        error.status if error else 200,
        title=f"Order {view.order_id}",
        view=view,
        actions=_actions(view, caller),
        done=done,
        error=error,
        confirm=confirm,
        reason=reason,
        form_key=secrets.token_urlsafe(12),
        history=list(reversed(view.history)),
        labels=ACTIONS,
    )


# The buttons an order's page may show, named by what they do.
ACTIONS = {
    "cancel": "Cancel order",
    "approve": "Approve",
    "reject": "Reject",
    "refund": "Refund parcel",
    "reship": "Reship parcel",
    "contact_customer": "Contact customer",
}
EXCEPTION_ACTIONS = ("refund", "reship", "contact_customer")


@router.post("/orders/{order_id}/actions/{action}", response_class=HTMLResponse)
async def order_action(request: Request, order_id: str, action: str) -> Response:
    """Ask to confirm an action, then do it as the API would: the same update and rules."""
    form = await _form(request)
    check_form(request, form.get("csrf_token"))
    confirmed = form.get("confirmed", "")
    given = form.get("version", "")
    version = int(given) if given.isdigit() and len(given) < 12 else None
    form_key = form.get("form_key", "")[:40]
    reason = form.get("reason", "")
    order_id = order_id[:40]
    got = await _caller_and_order(request, order_id)
    if isinstance(got, Response):
        return got
    caller, view = got
    if action not in ACTIONS:
        return render(
            request, "error.html", 404, title="Not found", error=ApiError(404, "no_action", "")
        )
    if confirmed != "yes":
        return _order_view(request, view, caller, confirm=action, reason=reason)
    name, req = _request(action, caller, reason, version)
    if name != c.UPDATE_CANCEL and not caller.at_least(Role.STAFF):
        error = ApiError(403, "forbidden", "this needs a staff key")
        return _order_view(request, view, caller, error=error)
    # A form posted twice (a double click, a reload) carries one key: one change, one answer.
    update_id = f"console:{caller.key_id}:{form_key}" if form_key else None
    try:
        async with request.app.state.sessions() as session:
            await update_order(
                session, request.app.state.temporal, caller, order_id, name, req, update_id
            )
    except ApiError as exc:
        view = await _order(request, caller, order_id)
        return _order_view(request, view, caller, error=exc)
    return RedirectResponse(f"/console/orders/{order_id}?done={action}", status_code=303)


@router.post("/presets", response_class=HTMLResponse)
async def preset_form(request: Request) -> Response:
    """Save the orders list's filters under a name every staff member sees, or delete one."""
    form = await _form(request)
    check_form(request, form.get("csrf_token"))
    try:
        caller = await signed_in(request)
    except NotSignedIn:
        return _to_sign_in()
    if not caller.at_least(Role.STAFF):
        refusal = ApiError(403, "forbidden", "saved filters are for staff")
        return render(request, "error.html", 403, title="Refused", error=refusal)
    name, query = form.get("name", "").strip(), form.get("query", "").strip()
    async with request.app.state.sessions.begin() as session:
        if form.get("delete", "").isdigit():
            await filter_presets.remove(session, int(form["delete"]))
        elif name:
            await filter_presets.save(session, name, query, caller.actor)
    return RedirectResponse(f"/console/orders?{query}", status_code=303)


# What may be done to several orders at once from the orders page.
BULK = {"approve": "Approve selected", "cancel": "Cancel selected"}
BULK_MOST = 50


@router.post("/orders/bulk", response_class=HTMLResponse)
async def bulk_form(request: Request) -> Response:
    """Approve or cancel the selected orders: confirm the list, then act on each as its own
    page would, and sum up what each did and why a refused one was refused."""
    form = await request.form(max_files=0, max_fields=BULK_MOST + 10)
    check_form(request, str(form.get("csrf_token", "")))
    try:
        caller = await signed_in(request)
    except NotSignedIn:
        return _to_sign_in()
    action = str(form.get("action", ""))
    chosen = list(dict.fromkeys(str(o)[:40] for o in form.getlist("order") if str(o)))
    if action not in BULK or not chosen:
        refusal = ApiError(422, "nothing_chosen", "choose orders and what to do with them")
        return render(request, "error.html", 422, title="Nothing to do", error=refusal)
    chosen = chosen[:BULK_MOST]
    if str(form.get("confirmed", "")) != "yes":
        return render(
            request,
            "bulk.html",
            title=BULK[action],
            action=action,
            label=BULK[action],
            chosen=chosen,
            form_key=secrets.token_urlsafe(12),
        )
    form_key = str(form.get("form_key", ""))[:40]
    reason = str(form.get("reason", ""))[:FIELD_LENGTH]
    outcomes = []
    for order_id in chosen:
        name, req = _request(action, caller, reason, None)
        outcome = {"order_id": order_id, "done": False, "code": "", "message": ""}
        try:
            if name != c.UPDATE_CANCEL and not caller.at_least(Role.STAFF):
                raise ApiError(403, "forbidden", "this needs a staff key")
            async with request.app.state.sessions() as session:
                view = await update_order(
                    session,
                    request.app.state.temporal,
                    caller,
                    order_id,
                    name,
                    req,
                    f"console:{caller.key_id}:{form_key}:{order_id}",
                )
            outcome.update(done=True, message=f"now {view.status.value}")
        except ApiError as exc:
            outcome.update(code=exc.code, message=exc.message)
        outcomes.append(outcome)
    return render(request, "bulk.html", title=BULK[action], label=BULK[action], outcomes=outcomes)


def _request(
    action: str, caller: Caller, reason: str, version: int | None
) -> tuple[str, c.EditRequest]:
    if action == "cancel":
        return c.UPDATE_CANCEL, c.CancelRequest(
            reason=reason.strip(), actor=caller.actor, expected_version=version
        )
    if action in EXCEPTION_ACTIONS:
        return c.UPDATE_EXCEPTION_ACTION, c.ExceptionAction(
            action=action, note=reason.strip(), actor=caller.actor, expected_version=version
        )
    decision = "approve" if action == "approve" else "reject"
    return c.UPDATE_REVIEW, c.ReviewDecision(
        decision=decision, note=reason.strip(), actor=caller.actor, expected_version=version
    )
