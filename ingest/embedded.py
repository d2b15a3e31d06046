"""The embedded store, used when no Qdrant URL is set: Qdrant Edge (the default) or qdrant-client's local
mode.

Either one is open in one process at a time; a second gets StoreLockedError. The two keep different files
(`qdrant-edge/` and `qdrant/` in the data dir), and neither reads the other's: an Edge store that does not
exist yet beside a local-mode index is refused with what to run, rather than started empty.
"""

import json
from pathlib import Path

from qdrant_client import QdrantClient

from ragserve.errors import StoreFormatError, StoreLockedError
from ragserve.ingest.edge_store import CATALOG, EdgeClient, StoreBusyError
from ragserve.settings import Settings

__all__ = ["StoreClient", "open_embedded"]

# What QdrantIndex and Collections talk to: the same method names and models on both.
StoreClient = QdrantClient | EdgeClient


def open_embedded(settings: Settings) -> StoreClient:
    """The embedded store the settings name, under the data dir."""
    edge = settings.embedded_store == "edge"
    path = settings.edge_path if edge else settings.qdrant_path
    if edge and not (path / CATALOG).exists():
        _refuse_a_local_mode_index(settings.qdrant_path)
    try:
        if edge:
            return EdgeClient(path)
        path.mkdir(parents=True, exist_ok=True)
        return QdrantClient(path=str(path))
    except (StoreBusyError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and "already accessed" not in str(exc):
            raise
        raise StoreLockedError(
            f"the embedded Qdrant store {path} is open in another process; "
            "wait for it to finish, or point RAGSERVE_QDRANT_URL at a Qdrant server"
        ) from exc


def _refuse_a_local_mode_index(local: Path) -> None:
    try:
        collections = json.loads((local / "meta.json").read_text()).get("collections")
    except (OSError, ValueError, AttributeError):
        return
    if collections:
        raise StoreFormatError(
            f"{local} holds an index in qdrant-client's local mode, and the embedded store is now "
            "Qdrant Edge: "
            "set RAGSERVE_EMBEDDED_STORE=local to keep using it, or move it away and re-index each tenant "
            "into Edge with `ragserve reindex DOCS_DIR --tenant T` (`ragserve up` re-indexes its tenants "
            "when it starts)"
        )
