"""The admin API's tenants and keys: create a tenant, change its settings, delete it with everything it owns;
issue, list and revoke its keys. Behind the admin key (routes/admin.py), live: nothing restarts."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import Field, ValidationError

from ragserve.errors import InvalidRequestError, validation_problems
from ragserve.ingest.tenancy import check_tenant
from ragserve.service.config import TenantSettings
from ragserve.service.deps import StateDep
from ragserve.service.erasure import erase_tenant
from ragserve.service.routes.admin import require_admin
from ragserve.service.schemas import RequestBody
from ragserve.service.state import ServiceState
from ragserve.service.tenants import Tenant

__all__ = ["router"]

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])

_MAX_KEY_LIFETIME = timedelta(days=3650)


class KeyRequest(RequestBody):
    name: Annotated[str, Field(max_length=200)] = ""
    """What the key is for, e.g. "prod web app" (shown in the list; the key itself never is)."""
    expires_in_s: Annotated[int | None, Field(ge=60, le=int(_MAX_KEY_LIFETIME.total_seconds()))] = None
    """Seconds until the key is refused; none: until it is revoked."""


class TenantChanges(RequestBody):
    """Settings to change; those left out keep their value."""

    system_prompt: Annotated[str | None, Field(min_length=1, max_length=20_000)] = None
    adapter: Annotated[str | None, Field(max_length=300)] = None
    k: Annotated[int | None, Field(ge=0, le=50)] = None
    max_concurrency: Annotated[int | None, Field(ge=1)] = None
    max_tokens: Annotated[int | None, Field(ge=1)] = None
    on_unsupported: Literal["flag", "refuse", "quote"] | None = None
    answer_mode: Literal["generate", "quote"] | None = None


class NewTenant(TenantChanges):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    key: KeyRequest | None = Field(default_factory=KeyRequest)
    """The tenant's first key, shown once in the answer; null issues none."""


def _tenant_json(state: ServiceState, tenant: Tenant) -> dict[str, Any]:
    """The tenant, its `adapter` the one it is served with now ("" for the base model)."""
    serving = state.adapters.assignments().get(tenant.name, tenant.settings.adapter)
    return {**tenant.to_json(), "adapter": serving}


async def _assign(state: ServiceState, tenant: str, ref: str) -> None:
    """Validates and loads the adapter (a refused one leaves the tenant as it was), and persists it."""
    await state.adapters.assign(tenant, ref.strip())


@router.get("/tenants")
async def list_tenants(state: StateDep) -> dict[str, Any]:
    """Every tenant with its settings and the adapter it is served with now."""
    tenants = await asyncio.to_thread(state.tenants.all)
    return {"tenants": [_tenant_json(state, t) for t in tenants]}


@router.post("/tenants", status_code=201)
async def create_tenant(body: NewTenant, state: StateDep) -> dict[str, Any]:
    """A new tenant, answered from its next request on; 409 if the name is taken. Its first key is in the
    answer, once."""
    name = check_tenant(body.name)
    changes = body.model_dump(exclude={"name", "key"}, exclude_none=True)
    try:
        settings = TenantSettings.model_validate(changes)
    except ValidationError as exc:  # what the body's own types leave to the settings: an adapter's name
        raise InvalidRequestError(validation_problems(exc)) from None
    tenant = await asyncio.to_thread(state.tenants.create, name, settings)
    state.tenants.remember(tenant)
    if settings.adapter:
        try:
            await _assign(state, name, settings.adapter)
        except Exception:
            await asyncio.to_thread(state.tenants.delete, name)  # created whole or not at all
            state.tenants.drop(name)
            raise
    answer = {"tenant": _tenant_json(state, tenant)}
    if body.key is not None:
        answer["key"] = await _issue(state, name, body.key)
    return answer


@router.get("/tenants/{tenant}")
async def get_tenant(tenant: str, state: StateDep) -> dict[str, Any]:
    return _tenant_json(state, await asyncio.to_thread(state.tenants.get, tenant))


@router.patch("/tenants/{tenant}")
async def change_tenant(tenant: str, body: TenantChanges, state: StateDep) -> dict[str, Any]:
    """Changes the settings named in the body; an `adapter` is validated and loaded before it is used."""
    changes = body.model_dump(exclude_unset=True)
    if any(value is None for key, value in changes.items() if key not in ("max_concurrency", "max_tokens")):
        raise InvalidRequestError("only max_concurrency and max_tokens may be null (no cap)")
    await asyncio.to_thread(state.tenants.get, tenant)  # 404 before anything is loaded
    if "adapter" in changes:
        await _assign(state, tenant, changes["adapter"])
    updated = await asyncio.to_thread(state.tenants.update, tenant, changes)
    state.tenants.remember(updated)
    return _tenant_json(state, updated)


@router.delete("/tenants/{tenant}")
async def delete_tenant(tenant: str, state: StateDep) -> dict[str, Any]:
    """Erases the tenant: its chunks in every collection, its keys, adapter assignment, documents and
    feedback in the database, its files in the data dir (service/erasure.py). Its requests are refused from
    now on."""
    async with state.library.holding(tenant):  # no indexing run of its uploads starts meanwhile
        erased = await asyncio.to_thread(
            erase_tenant, state.tenants, state.ingest.index, state.database, state.settings, tenant
        )
    state.tenants.drop(tenant)
    return erased


@router.post("/tenants/{tenant}/keys", status_code=201)
async def issue_key(tenant: str, body: KeyRequest, state: StateDep) -> dict[str, Any]:
    """A new key for the tenant, shown once in the answer: keep it, it cannot be read again."""
    await asyncio.to_thread(state.tenants.get, tenant)
    return await _issue(state, tenant, body)


@router.get("/tenants/{tenant}/keys")
async def list_keys(tenant: str, state: StateDep) -> dict[str, Any]:
    """The tenant's keys by id, name and dates; never a key or its hash."""
    keys = await asyncio.to_thread(state.tenants.keys, tenant)
    return {"keys": [k.to_json() for k in keys]}


@router.delete("/tenants/{tenant}/keys/{key_id}")
async def revoke_key(tenant: str, key_id: str, state: StateDep) -> dict[str, Any]:
    """Refused from the next request on, by every process that shares the database."""
    info = await asyncio.to_thread(state.tenants.revoke_key, tenant, key_id)
    return info.to_json()


async def _issue(state: ServiceState, tenant: str, body: KeyRequest) -> dict[str, Any]:
    expires = datetime.now(UTC) + timedelta(seconds=body.expires_in_s) if body.expires_in_s else None
    issued = await asyncio.to_thread(state.tenants.issue_key, tenant, body.name, expires)
    return issued.to_json()
