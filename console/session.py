"""Who is signed in to the console, and the forms they may post.

The session cookie holds the caller's API key sealed with the console's secret (AES-GCM): the
browser never shows it and no one can forge or read it, and every request checks the key as
the API does, so a revoked key ends its sessions at once. Forms carry a token derived from a
random cookie of the browser's and the secret; a page of another site can neither read the
cookie nor work out the token, so a forged form is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from fastapi import Request, Response

from api import sealing
from api.auth import caller_of
from models.api_keys import Caller

SESSION = "ofc_session"
CSRF = "ofc_csrf"
PATH = "/console"
CONTEXT = b"orderflow console session"


class NotSignedIn(Exception):
    """The request has no valid session: the page asks to sign in."""


class ForgedForm(Exception):
    """A form arrived without the token its page carried."""


def console_secret(request: Request) -> str:
    secret: str | None = getattr(request.app.state, "console_secret", None)
    if not secret:
        # Unset: one per process; sessions then last until the API restarts.
        secret = request.app.state.settings.console_secret or secrets.token_hex(32)
        request.app.state.console_secret = secret
    return secret


def _secure(request: Request) -> bool:
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    return proto == "https"


def sign_in(request: Request, response: Response, api_key: str) -> None:
    """Start a session for the caller behind `api_key` (checked by the caller)."""
    sealed = sealing.seal(console_secret(request), api_key.encode(), CONTEXT)
    response.set_cookie(
        SESSION,
        base64.urlsafe_b64encode(sealed).decode(),
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path=PATH,
    )


def sign_out(response: Response) -> None:
    response.delete_cookie(SESSION, path=PATH)


async def signed_in(request: Request) -> Caller:
    """The caller of this session; NotSignedIn without a valid one."""
    raw = request.cookies.get(SESSION)
    if not raw:
        raise NotSignedIn
    try:
        key = sealing.unseal(
            console_secret(request), base64.urlsafe_b64decode(raw.encode()), CONTEXT
        ).decode()
    except (ValueError, sealing.Unreadable):
        raise NotSignedIn from None
    caller = await caller_of(request, key)
    if caller is None:
        raise NotSignedIn
    request.state.caller = caller
    return caller


def form_token(request: Request) -> tuple[str, str | None]:
    """The token this page's forms carry, and the cookie value to set when the browser has
    none yet (the token derives from it)."""
    nonce = request.cookies.get(CSRF)
    new = None
    if not nonce:
        nonce = new = secrets.token_urlsafe(24)
    return _derive(request, nonce), new


def set_form_cookie(request: Request, response: Response, nonce: str) -> None:
    response.set_cookie(
        CSRF, nonce, httponly=True, samesite="strict", secure=_secure(request), path=PATH
    )


def _derive(request: Request, nonce: str) -> str:
    mac = hmac.new(console_secret(request).encode(), b"csrf:" + nonce.encode(), hashlib.sha256)
    return mac.hexdigest()[:40]


def check_form(request: Request, token: str | None) -> None:
    """Refuse a form whose token is missing or not its browser's."""
    nonce = request.cookies.get(CSRF)
    if not nonce or not token or not hmac.compare_digest(token, _derive(request, nonce)):
        raise ForgedForm
