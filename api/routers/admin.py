"""Administration: API keys and the settings in force (admin keys only)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from api.auth import key_cache
from api.deps import SessionDep, SessionsDep, SettingsDep
from api.errors import ApiError
from models import api_keys
from models.api_keys import Role
from models.order import CustomerId

router = APIRouter(prefix="/admin", tags=["admin"])

# Settings that are secrets are shown as set or not, never by value.
SECRET_SETTINGS = frozenset({"webhook_secret", "payment_webhook_secret", "api_key", "database_url"})


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Histories record the actor as "role:name" in 100 characters.
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    role: Literal["customer", "staff", "admin"]
    customer_id: CustomerId | None = None

    @model_validator(mode="after")
    def _customer_keys_name_one(self) -> KeyCreate:
        if (self.role == "customer") != (self.customer_id is not None):
            raise ValueError("a customer key needs customer_id; other roles take none")
        return self


@router.post("/api-keys", status_code=201)
async def create_key(body: KeyCreate, sessions: SessionsDep) -> dict[str, Any]:
    """A new key; `key` is shown in this answer only (the server keeps a hash)."""
    async with sessions.begin() as session:
        caller, token = await api_keys.create_key(
            session, body.name, Role(body.role), body.customer_id
        )
    return {
        "key_id": caller.key_id,
        "name": caller.name,
        "role": caller.role.value,
        "customer_id": caller.customer_id,
        "key": token,
    }


@router.get("/api-keys")
async def list_keys(session: SessionDep) -> dict[str, Any]:
    """Every key, without secrets."""
    return {"items": await api_keys.list_keys(session)}


@router.delete("/api-keys/{key_id}")
async def revoke_key(
    key_id: Annotated[str, Path(max_length=16)], sessions: SessionsDep, request: Request
) -> dict[str, Any]:
    """Revoke a key: refused at once by this API process, by others within the key cache time."""
    async with sessions.begin() as session:
        if not await api_keys.revoke_key(session, key_id):
            raise ApiError(404, "key_not_found", f"no API key {key_id}")
    key_cache(request).clear()
    return {"key_id": key_id, "revoked": True}


@router.get("/settings")
async def show_settings(settings: SettingsDep) -> dict[str, Any]:
    """The settings this API process runs with; secrets only as set or not."""
    values = settings.model_dump(mode="json")
    return {
        k: ("(set)" if v else "(not set)") if k in SECRET_SETTINGS else v
        for k, v in sorted(values.items())
    }
