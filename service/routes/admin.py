"""The admin API, behind its own key: re-index a tenant while the service keeps serving, see and assign
adapters, see the vLLM replicas; and its own schema, which the public one leaves out."""

import asyncio
from dataclasses import asdict
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi.openapi.utils import get_openapi
from pydantic import AfterValidator, Field

from ragserve import __version__
from ragserve.adapters.listing import list_adapters
from ragserve.errors import AuthError, InvalidRequestError, PageNotFoundError
from ragserve.service.auth import bearer_matches
from ragserve.service.deps import StateDep
from ragserve.service.library import upload_folders
from ragserve.service.paths import MAX_PATH_CHARS, RequestPath, checked_path
from ragserve.service.schemas import RequestBody
from ragserve.settings import Settings

__all__ = ["enabled", "router"]


def enabled(settings: Settings) -> bool:
    """The admin API is mounted only with a non-blank RAGSERVE_ADMIN_KEY (`ragserve up` also refuses a
    blank or weak one at start: ragserve/launch/exposure.py)."""
    return settings.admin_key is not None and bool(settings.admin_key.get_secret_value().strip())


async def require_admin(state: StateDep, authorization: Annotated[str | None, Header()] = None) -> None:
    """Compares digests in constant time; with no key (or a blank one) every request is refused."""
    key = state.settings.admin_key
    if key is None or not enabled(state.settings):
        raise AuthError("the admin API is off: set RAGSERVE_ADMIN_KEY to enable it")
    if not bearer_matches(authorization, key):
        raise AuthError("missing or wrong admin key")


router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


class ReindexRequest(RequestBody):
    tenant: str
    # Only ever the tenant's configured folder: `ragserve reindex DOCS` sends the folder it was given, so a
    # mismatch is refused with a message instead of indexing whatever path the admin key names.
    docs: RequestPath | None = None


@router.post("/reindex")
async def reindex(body: ReindexRequest, state: StateDep) -> dict[str, Any]:
    """Re-indexes the tenant's configured docs folder, and no other."""
    tenant = await asyncio.to_thread(state.tenants.get, body.tenant)
    if tenant.docs is None:
        raise InvalidRequestError(f"tenant {body.tenant} has no docs folder on the server", param="tenant")
    if body.docs is not None and Path(body.docs).resolve() != tenant.docs.resolve():
        raise InvalidRequestError(
            f"{body.docs}: the service re-indexes only {body.tenant}'s configured docs folder, {tenant.docs}",
            param="docs",
        )
    # After a model or chunking change, the rebuilt index goes live once it holds every tenant with documents.
    folders = [t.name for t in await asyncio.to_thread(state.tenants.all) if t.docs is not None]
    folders += upload_folders(state.settings.documents_dir)
    run = state.ingest.reindexer().run
    report = await asyncio.to_thread(run, tenant.docs, body.tenant, tenants=folders)
    return report.to_json()


class AdapterRequest(RequestBody):
    # NAME or NAME@VERSION; "" for the base model. The registry builds a folder's path from it.
    adapter: Annotated[str, Field(max_length=MAX_PATH_CHARS), AfterValidator(checked_path)]


@router.put("/tenants/{tenant}/adapter")
async def assign_adapter(tenant: str, body: AdapterRequest, state: StateDep) -> dict[str, Any]:
    """Validate, load, switch, persist; the old version is unloaded after its last request."""
    version = await state.adapters.assign(tenant, body.adapter.strip())
    return {
        "tenant": tenant,
        "adapter": version.ref if version else "",
        "served_name": version.served_name if version else state.base_name,
    }


@router.get("/adapters")
async def adapters(state: StateDep) -> dict[str, Any]:
    """Every adapter in the registry, its versions with their cards' scores, and the tenants on each now,
    as `ragserve adapters list --json` prints them: `{"adapters": [{"name", "versions": [{"version", "path",
    "created_at", "base_model", "eval", "tenants"}]}]}`."""
    listing = await asyncio.to_thread(list_adapters, state.adapters.registry, state.adapters.assignments())
    return {"adapters": [entry.to_json() for entry in listing]}


@router.get("/replicas")
async def replicas(state: StateDep) -> list[dict[str, Any]]:
    """Each vLLM replica: `[{"url", "healthy", "running", "waiting", "adapters", "requests", "adapter_hits",
    "adapter_loads"}]`; the same figures are the `ragserve_replica_*` gauges of `/metrics`."""
    stats = await state.replicas.describe()
    return [{k: v for k, v in asdict(s).items() if k not in _INTERNAL} for s in stats]


_INTERNAL = {"rank", "at"}  # the figures' key on the board, and when they were posted


@router.get("/openapi.json", include_in_schema=False)
async def openapi(state: StateDep) -> dict[str, Any]:
    """The admin API's schema, kept out of the public one: to the admin key only, unless RAGSERVE_API_DOCS is
    false, which serves neither."""
    if not state.settings.api_docs:
        raise PageNotFoundError("the API's schema is not served here (RAGSERVE_API_DOCS is false)")
    return _schema()


@cache
def _schema() -> dict[str, Any]:
    from ragserve.service.routes import admin_tenants  # it builds on this module's require_admin

    routes = [*router.routes, *admin_tenants.router.routes]
    return get_openapi(title="ragserve admin API", version=__version__, routes=routes)
