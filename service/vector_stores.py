"""A tenant's vector stores as OpenAI's API shows them, and search over them by the chat path's retrieval.

A store is a set of the tenant's documents; searching it is the tenant's hybrid search filtered to those
documents' chunks in the one collection, so a file attached to a store is searchable there the moment its
indexing completes, and detaching one is instant. Every tenant has a store `vs_default`: all its documents,
including those from its folder on the server, which is what chat answers from; its membership follows the
documents, so files are not attached to it or detached from it, and it cannot be changed or deleted.

A file's status in a store is its document's: `in_progress` while it is indexed, then `completed`, or
`failed` with its reason. A result's score is the RRF fusion of its dense and BM25 ranks, in [0, 1].
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ragserve.errors import InvalidRequestError
from ragserve.ingest.search import Hit
from ragserve.service.attribute_filters import AttributeFilter
from ragserve.service.library import DocumentLibrary
from ragserve.state.vector_stores import Attributes, BatchRow, StoreFileRow, VectorStoreRow, VectorStoreStore

__all__ = ["DEFAULT_STORE", "POLL_AFTER_MS", "Scope", "StoreHit", "VectorStores", "store_file_json"]

DEFAULT_STORE = "vs_default"
POLL_AFTER_MS = "250"  # what a client polling an unfinished file or batch waits (openai-poll-after-ms)
_COUNTS = ("in_progress", "completed", "failed", "cancelled")


@dataclass(frozen=True)
class StoreHit:
    """A retrieved chunk, and the file it is from."""

    hit: Hit
    file_id: str
    filename: str
    attributes: Attributes

    @property
    def score(self) -> float:
        return min(1.0, max(0.0, self.hit.score))

    def to_json(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "filename": self.filename,
            "score": self.score,
            "attributes": self.attributes,
            "content": [{"type": "text", "text": self.hit.text}],
        }


@dataclass(frozen=True)
class Scope:
    """The documents a search reads, by their source in the index. `sources`: None for all the tenant's
    chunks (its default store, unfiltered), else those documents' (the completed ones)."""

    by_source: dict[str, StoreFileRow]
    sources: list[str] | None

    def hit(self, hit: Hit) -> StoreHit:
        return StoreHit(hit, *self.file(hit.source))

    def file(self, source: str) -> tuple[str, str, Attributes]:
        """The file id, file name and attributes of a chunk's source: an uploaded document's chunk names its
        file; one from a folder on the server names its path."""
        row = self.by_source.get(source)
        if row is not None:
            return row.document.id, row.document.filename, row.attributes
        return source, source.rsplit("/", 1)[-1], {}


class VectorStores:
    def __init__(self, rows: VectorStoreStore, library: DocumentLibrary) -> None:
        self.rows = rows
        self.library = library

    # -- reading --

    def files(self, tenant: str, store_ids: Sequence[str]) -> list[StoreFileRow]:
        """The documents in these stores, each store's in order; `vs_default`'s are all the tenant's."""
        named = [i for i in dict.fromkeys(store_ids) if i != DEFAULT_STORE]
        found = self.rows.files(tenant, named) if named else []
        if DEFAULT_STORE in store_ids:
            found += [
                StoreFileRow(DEFAULT_STORE, d, {}, d.created_at) for d in self.library.store.all(tenant)
            ]
        return found

    def file_row(self, tenant: str, store_id: str, file_id: str) -> StoreFileRow:
        if store_id != DEFAULT_STORE:
            return self.rows.file(tenant, store_id, file_id)
        document = self.library.store.get(tenant, file_id, "file")
        return StoreFileRow(DEFAULT_STORE, document, {}, document.created_at)

    def describe(self, tenant: str, store_id: str) -> dict[str, Any]:
        row = None if store_id == DEFAULT_STORE else self.rows.get(tenant, store_id)
        return self._store_json(row, self.files(tenant, [store_id]))

    def describe_all(self, tenant: str) -> list[dict[str, Any]]:
        """Oldest first, the default store first of all."""
        rows = self.rows.all(tenant)
        files = self.rows.files(tenant, [r.id for r in rows]) if rows else []
        return [self._store_json(None, self.files(tenant, [DEFAULT_STORE]))] + [
            self._store_json(row, [f for f in files if f.store_id == row.id]) for row in rows
        ]

    def batch_json(self, tenant: str, batch: BatchRow) -> dict[str, Any]:
        files = [f for f in self.rows.files(tenant, [batch.store_id]) if f.document.id in batch.document_ids]
        counts = _counts(files)
        counts["cancelled"] = len(batch.document_ids) - len(files)
        counts["total"] = len(batch.document_ids)
        if batch.cancelled_at is not None:
            status = "cancelled"
        elif counts["in_progress"]:
            status = "in_progress"
        elif counts["failed"] and not counts["completed"]:
            status = "failed"
        else:
            status = "completed"
        return {
            "id": batch.id,
            "object": "vector_store.files_batch",
            "created_at": int(batch.created_at.timestamp()),
            "vector_store_id": batch.store_id,
            "status": status,
            "file_counts": counts,
        }

    # -- changing --

    def writable(self, store_id: str) -> str:
        if store_id == DEFAULT_STORE:
            raise InvalidRequestError(
                f"{DEFAULT_STORE} holds every document of the tenant: upload or delete files to change it",
                param="vector_store_id",
            )
        return store_id

    # -- searching --

    def scope(self, tenant: str, store_ids: Sequence[str], filters: AttributeFilter | None = None) -> "Scope":
        """What a search of these stores reads: their documents that meet the filters."""
        files = self.files(tenant, store_ids)
        if filters is not None:
            files = [f for f in files if filters.matches(f.attributes)]
        by_source: dict[str, StoreFileRow] = {}
        for f in files:
            by_source.setdefault(self.library.source_of(f.document), f)
        everything = DEFAULT_STORE in store_ids and filters is None
        return Scope(
            by_source,
            None if everything else [s for s, f in by_source.items() if f.document.status == "completed"],
        )

    async def search(
        self,
        retrieve: Any,
        tenant: str,
        store_ids: Sequence[str],
        queries: Sequence[str],
        k: int,
        filters: AttributeFilter | None = None,
        score_threshold: float = 0.0,
    ) -> list[StoreHit]:
        """The best `k` chunks of the stores' documents for any of the queries (a chunk's best score).
        `retrieve`: service/retrieval.py's retrieve_hits with the state bound: (tenant, query, k, sources)."""
        scope = await asyncio.to_thread(self.scope, tenant, store_ids, filters)
        best: dict[str, StoreHit] = {}
        for query in queries:
            for hit in await retrieve(tenant, query, k, scope.sources):
                found = scope.hit(hit)
                if found.score >= score_threshold and (
                    hit.chunk_id not in best or best[hit.chunk_id].score < found.score
                ):
                    best[hit.chunk_id] = found
        return sorted(best.values(), key=lambda h: h.score, reverse=True)[:k]

    # -- shapes --

    def _store_json(self, row: VectorStoreRow | None, files: list[StoreFileRow]) -> dict[str, Any]:
        counts = _counts(files)
        counts["total"] = len(files)
        created = row.created_at if row else min((f.created_at for f in files), default=None)
        active = row.last_active_at if row else max((f.document.updated_at for f in files), default=None)
        return {
            "id": row.id if row else DEFAULT_STORE,
            "object": "vector_store",
            "name": row.name if row else "default",
            "created_at": int(created.timestamp()) if created else 0,
            "last_active_at": int(active.timestamp()) if active else None,
            "usage_bytes": sum(f.document.bytes for f in files),
            "file_counts": counts,
            "status": "in_progress" if counts["in_progress"] else "completed",
            "metadata": row.metadata if row else {},
            "expires_after": None,
            "expires_at": None,
        }


def store_file_json(found: StoreFileRow) -> dict[str, Any]:
    document = found.document
    error = None
    if document.status == "failed":
        error = {"code": "invalid_file", "message": document.error or "the file could not be indexed"}
    return {
        "id": document.id,
        "object": "vector_store.file",
        "created_at": int(found.created_at.timestamp()),
        "vector_store_id": found.store_id,
        "status": document.status,
        "last_error": error,
        "usage_bytes": document.bytes,
        "attributes": found.attributes,
        "chunking_strategy": {"type": "auto"},
    }


def _counts(files: list[StoreFileRow]) -> dict[str, int]:
    counts = dict.fromkeys(_COUNTS, 0)
    for f in files:
        counts[f.document.status] += 1
    return counts
