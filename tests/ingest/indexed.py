"""Reading back what the index holds, for assertions."""

from typing import Any

from qdrant_client import models as qm

from ragserve.ingest.index import QdrantIndex


def point_set(index: QdrantIndex, tenant: str) -> dict[str, dict[str, Any]]:
    """Every point of a tenant: id -> payload, as the index holds it."""
    flt = qm.Filter(must=[qm.FieldCondition(key="tenant", match=qm.MatchValue(value=tenant))])
    points, _ = index.client.scroll(index.collection, scroll_filter=flt, limit=100_000, with_payload=True)
    return {str(p.id): dict(p.payload or {}) for p in points}


def sources(index: QdrantIndex, tenant: str) -> dict[str, int]:
    """Source -> number of chunks."""
    counts: dict[str, int] = {}
    for payload in point_set(index, tenant).values():
        counts[payload["source"]] = counts.get(payload["source"], 0) + 1
    return counts
