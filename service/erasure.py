"""Deleting a tenant, with everything it owns: its keys are refused first, then its chunks go from every
collection under the alias (and from the embedded store's files, blue_green.Collections.erase_tenant), its
files from the data dir (its uploaded documents, feedback files of an older data dir), and its row from the
database with its keys, assignment, documents and feedback (ON DELETE CASCADE), after which the database's
files are purged of the deleted rows. The adapters in the registry are not a tenant's (any tenant may use
one) and stay."""

import logging
import shutil
from typing import Any

from ragserve.ingest.blue_green import Collections
from ragserve.ingest.index import QdrantIndex
from ragserve.ingest.tenancy import check_tenant
from ragserve.service.tenants import TenantDirectory
from ragserve.settings import Settings
from ragserve.state.database import Database

__all__ = ["erase_tenant", "erase_tenant_files"]

log = logging.getLogger("ragserve.service")


def erase_tenant_files(settings: Settings, tenant: str) -> list[str]:
    """Removes them; returns their paths relative to the data dir."""
    check_tenant(tenant)
    data_dir = settings.data_dir
    candidates = [
        settings.feedback_dir / f"{tenant}.jsonl",
        settings.feedback_dir / "imported" / f"{tenant}.jsonl",
    ]
    removed: list[str] = []
    uploads = settings.documents_dir / tenant
    if uploads.is_dir() and not uploads.is_symlink():
        removed.extend(str(p.relative_to(data_dir)) for p in sorted(uploads.rglob("*")) if p.is_file())
        shutil.rmtree(uploads)
    for path in candidates:
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(str(path.relative_to(data_dir)))
    return removed


def erase_tenant(tenants: TenantDirectory, index: QdrantIndex, database: Database, settings: Settings,
                 tenant: str) -> dict[str, Any]:  # fmt: skip
    """Erases the tenant (InvalidTenantError if there is none); what was removed, for the caller to show."""
    found = tenants.get(tenant)
    tenants.revoke_all_keys(tenant)  # first: no request starts from here on
    collections = Collections(index).erase_tenant(tenant)
    files = erase_tenant_files(settings, tenant)
    tenants.delete(tenant)
    database.purge()
    log.warning("tenant %s deleted: %d collections, %d files", tenant, len(collections), len(files))
    erased: dict[str, Any] = {"deleted": tenant, "collections": collections, "files": files}
    if found.source == "config":
        erased["note"] = (
            f"{tenant} is in the config file: remove its table there, or the next start creates it again"
        )
    return erased
