"""Who is calling: an API key in `Authorization: Bearer …` (or `X-API-Key`), and what its role
may do. Every route but the health check, the docs and the signed webhooks needs a key."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import get_sessionmaker, get_settings
from api.errors import ApiError
from models import orders_repo
from models.api_keys import Caller, Role, check_key, hash_key


class KeyCache:
    """Recently checked keys, so a burst of calls costs one lookup; revoking clears it here,
    other API processes notice within `ttl` seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._seen: dict[str, tuple[Caller, float]] = {}

    def get(self, digest: str) -> Caller | None:
        hit = self._seen.get(digest)
        if hit is None or hit[1] < time.monotonic():
            return None
        return hit[0]

    def put(self, digest: str, caller: Caller) -> None:
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[digest] = (caller, time.monotonic() + self.ttl)

    def clear(self) -> None:
        self._seen.clear()


def key_cache(request: Request) -> KeyCache:
    cache: KeyCache | None = getattr(request.app.state, "key_cache", None)
    if cache is None:
        cache = KeyCache(get_settings(request).api_key_cache_seconds)
        request.app.state.key_cache = cache
    return cache


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


# Declared so the OpenAPI document names how to authenticate; get_caller reads the headers itself
# to tell a missing key from a malformed one.
BEARER = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`")
API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key")
# Keys are about 60 characters; anything far longer is not one, and is not worth hashing.
MAX_KEY_LENGTH = 300


def presented_key(request: Request) -> str:
    """The API key the request carries, not checked yet; 401 without one."""
    authorization = request.headers.get("authorization")
    token = request.headers.get("x-api-key")
    if authorization is not None:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise _unauthorized("use Authorization: Bearer <API key>")
        token = value.strip()
    if not token:
        raise _unauthorized("an API key is required (Authorization: Bearer <key>)")
    if len(token) > MAX_KEY_LENGTH:
        raise _unauthorized("unknown or revoked API key")
    return token


async def get_caller(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None,
    _api_key: Annotated[str | None, Security(API_KEY)] = None,
) -> Caller:
    """The caller behind the request's API key; 401 without a valid one."""
    caller = await caller_of(request, presented_key(request))
    if caller is None:
        raise _unauthorized("unknown or revoked API key")
    # Kept for the error handlers, which record a refused change in its order's history.
    request.state.caller = caller
    return caller


async def caller_of(request: Request, token: str) -> Caller | None:
    """The caller an API key belongs to, or None for an unknown or revoked one (the API's
    header and the console's session both come here)."""
    if len(token) > MAX_KEY_LENGTH:
        return None
    digest = hash_key(token)
    cache = key_cache(request)
    caller = cache.get(digest)
    if caller is None:
        async with get_sessionmaker(request)() as session:
            caller = await check_key(session, token)
        if caller is not None:
            cache.put(digest, caller)
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_actor(caller: CallerDep) -> str:
    """Who acts, as order histories record it: the key's role and name."""
    return caller.actor


ActorDep = Annotated[str, Depends(get_actor)]


def require(role: Role) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency that lets callers of `role` or above through, and answers 403 otherwise."""

    async def check(caller: CallerDep) -> Caller:
        if not caller.at_least(role):
            raise ApiError(403, "forbidden", f"this needs a {role.value} key")
        return caller

    return check


STAFF = Depends(require(Role.STAFF))
ADMIN = Depends(require(Role.ADMIN))


def check_customer(caller: Caller, customer_id: str) -> None:
    """A customer key acts only for its own customer."""
    if caller.role == Role.CUSTOMER and caller.customer_id != customer_id:
        raise ApiError(403, "not_your_customer", "this key acts for another customer")


async def check_order(session: AsyncSession, caller: Caller, order_id: str) -> None:
    """404 for an order that does not exist, or that a customer key does not own."""
    owner = await orders_repo.order_owner(session, order_id)
    if owner is None or (caller.role == Role.CUSTOMER and owner != caller.customer_id):
        raise ApiError(404, "order_not_found", f"no order {order_id}")
