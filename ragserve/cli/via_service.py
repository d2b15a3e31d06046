"""While `ragserve up` holds the embedded store, `ragserve reindex` goes through the service's admin API."""

import os
from pathlib import Path

import httpx

from ingest.reindex import ReindexReport
from ragserve.errors import StoreLockedError, UpstreamError
from ragserve.settings import Settings
from service import registration

__all__ = ["reindex_via_service"]


def reindex_via_service(settings: Settings, docs_dir: Path, tenant: str) -> ReindexReport:
    url = registration.read(settings.data_dir)
    key = os.environ.get("RAGSERVE_ADMIN_KEY")
    if url is None or not key:
        raise StoreLockedError(
            f"the embedded store is held by the service at {url}; set RAGSERVE_ADMIN_KEY so that "
            "`ragserve reindex` can go through its admin API"
        )
    try:
        response = httpx.post(
            f"{url}/admin/reindex",
            json={"tenant": tenant, "docs": str(docs_dir.resolve())},
            headers={"Authorization": f"Bearer {key}"},
            timeout=3600,
        )
    except httpx.HTTPError as exc:
        raise UpstreamError(f"the service at {url} holds the store but cannot be reached: {exc}") from exc
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:300]
        raise UpstreamError(f"the service at {url} refused the re-index ({response.status_code}): {message}")
    return ReindexReport.from_json(response.json())
