"""The console's customer pages: find a customer, see their whole picture, add a staff note.

The picture and the note go through the same functions as GET /customers/{id} and
POST /customers/{id}/notes, so what staff see and the notes' rules are the API's own.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.errors import ApiError
from api.routers.customers import picture_for, record_note
from api.schemas import NoteBody
from console.pages import render
from console.session import NotSignedIn, check_form, signed_in
from models.api_keys import Caller, Role

router = APIRouter(prefix="/console", include_in_schema=False)

# The longest customer id the search form passes on (the API's ids are shorter).
ID_LENGTH = 40


async def staff_caller(request: Request) -> Caller | Response:
    """The signed-in staff member, or the page to answer instead (sign in, or refused)."""
    try:
        caller = await signed_in(request)
    except NotSignedIn:
        return RedirectResponse("/console/sign-in", status_code=303)
    if not caller.at_least(Role.STAFF):
        refusal = ApiError(403, "forbidden", "this page is for staff")
        return render(request, "error.html", 403, title="Refused", error=refusal)
    return caller


def _customer_url(customer_id: str) -> str:
    return f"/console/customers/{quote(customer_id, safe='')}"


@router.get("/customers", response_class=HTMLResponse)
async def customers_page(request: Request) -> Response:
    """A customer id to look up: the form sends staff straight to that customer's page."""
    caller = await staff_caller(request)
    if isinstance(caller, Response):
        return caller
    wanted = request.query_params.get("customer_id", "").strip()[:ID_LENGTH]
    if wanted:
        return RedirectResponse(_customer_url(wanted), status_code=303)
    return render(request, "customers.html", title="Customers")


async def _customer_view(
    request: Request,
    caller: Caller,
    customer_id: str,
    status_code: int = 200,
    **context: Any,
) -> Response:
    try:
        async with request.app.state.sessions() as session:
            picture = await picture_for(session, caller, customer_id[:ID_LENGTH])
    except ApiError as exc:
        return render(request, "error.html", exc.status, title="Not found", error=exc)
    notes = [e for e in picture["communication"] if e["type"] == "note"]
    return render(
        request,
        "customer.html",
        status_code,
        title=f"Customer {customer_id}",
        p=picture,
        notes=notes,
        **context,
    )


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
async def customer_page(request: Request, customer_id: str) -> Response:
    """One customer: orders, open returns, value, points, the communication log and notes."""
    caller = await staff_caller(request)
    if isinstance(caller, Response):
        return caller
    return await _customer_view(
        request, caller, customer_id, done=request.query_params.get("done") == "note"
    )


def _invalid(exc: ValidationError) -> ApiError:
    """The API's refusal of a body that does not match its schema, in words."""
    said = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'note'}: {e['msg']}" for e in exc.errors()
    )
    return ApiError(422, "invalid_request", f"the note does not match the schema ({said})")


@router.post("/customers/{customer_id}/notes", response_class=HTMLResponse)
async def note_form(request: Request, customer_id: str) -> Response:
    """Add a staff note; a refusal shows on the page with the text kept."""
    form = await request.form(max_files=0, max_fields=10)
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    check_form(request, fields.get("csrf_token"))
    caller = await staff_caller(request)
    if isinstance(caller, Response):
        return caller
    text = fields.get("text", "")
    try:
        body = NoteBody(text=text, order_id=fields.get("order_id") or None)
        await record_note(request.app.state.sessions, customer_id[:ID_LENGTH], caller.actor, body)
    except ValidationError as exc:
        return await _customer_view(
            request, caller, customer_id, 422, error=_invalid(exc), text=text
        )
    except ApiError as exc:
        return await _customer_view(request, caller, customer_id, exc.status, error=exc, text=text)
    return RedirectResponse(_customer_url(customer_id) + "?done=note", status_code=303)
