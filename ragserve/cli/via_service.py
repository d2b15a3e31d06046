"""While `ragserve up` runs, the CLI goes through the service's admin API: the service holds the embedded
store, and applies adapter swaps to the vLLM server it talks to."""

from pathlib import Path
from typing import Any

import httpx

from ragserve.errors import StoreLockedError, UpstreamError
from ragserve.ingest.reindex import ReindexReport
from ragserve.launch import registration
from ragserve.settings import Settings

__all__ = ["admin_request", "reindex_via_service", "running_service"]


def running_service(settings: Settings) -> str | None:
    """The URL of the service using this data dir, if one is registered and answers."""
    url = registration.read(settings.data_dir)
    if url is None:
        return None
    try:
        return url if httpx.get(f"{url}/healthz", timeout=3).status_code == 200 else None
    except httpx.HTTPError:
        return None


def admin_request(
    settings: Settings, url: str, method: str, path: str, body: dict[str, Any], timeout_s: float
) -> dict[str, Any]:
    """One admin call; the service's own error message becomes the error, with its domain error type."""
    secret = settings.admin_key
    key = secret.get_secret_value() if secret else ""
    if not key:
        raise StoreLockedError(
            f"the service at {url} is running; set RAGSERVE_ADMIN_KEY so the CLI can go through its admin API"
        )
    try:
        response = httpx.request(
            method, f"{url}{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=timeout_s
        )
    except httpx.HTTPError as exc:
        raise UpstreamError(f"the service at {url} cannot be reached: {exc}") from exc
    if not response.is_success:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:300]
        raise UpstreamError(f"the service at {url} refused it ({response.status_code}): {message}")
    result: dict[str, Any] = response.json()
    return result


def reindex_via_service(settings: Settings, docs_dir: Path, tenant: str) -> ReindexReport:
    url = registration.read(settings.data_dir)
    if url is None:
        raise StoreLockedError("the embedded store is held by another process, and no service is registered")
    body = {"tenant": tenant, "docs": str(docs_dir.resolve())}
    report = admin_request(settings, url, "POST", "/admin/reindex", body, timeout_s=3600)
    return ReindexReport.from_json(report)
