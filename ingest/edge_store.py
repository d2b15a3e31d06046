"""Qdrant Edge as the embedded store, behind the part of QdrantClient's API that ragserve calls.

Edge (qdrant-edge-py) is Qdrant's own engine in the process: segments, payload indexes, sparse vectors with
IDF, a write-ahead log. A shard is all it has, so this client keeps what QdrantIndex and Collections also use
on a server (collections, their metadata, aliases) and returns qdrant-client's models, so that both run
unchanged on either. What it keeps:

- One Edge shard per collection, in `collections/<name>/` (`<name>.<random>/` once compacted, see
  compact). A write returns once it is in the shard's WAL, which survives a kill of the process; the shard
  is flushed every few seconds of writing, and on close, so opening it replays little.
- The collections (vector config and metadata) and the aliases live in `catalog.json`, replaced atomically on
  every change. An alias switch is one such write, so a kill leaves the old aliases or the new ones.
- A collection is created shard first, catalog second, and deleted catalog first, folder second: a kill in
  between leaves a folder the catalog does not name, which the next open deletes.
- `.lock` is held (flock) while the client is open: one process at a time, as local mode allows.
- Every call holds one lock, so the service's searches and its writer thread never overlap inside Edge.

Queries are answered by edge_query.py, fusion queries included.
"""

import fcntl
import os
import secrets
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import qdrant_edge as edge
from qdrant_client import models as qm
from qdrant_client.http.models import QueryResponse  # qm.QueryResponse is fastembed's

from ragserve.ingest import edge_convert as convert
from ragserve.ingest import edge_query
from ragserve.ingest.edge_catalog import CATALOG, EdgeCatalog

__all__ = ["CATALOG", "EdgeClient", "StoreBusyError"]

_FLUSH_EVERY_S = 5.0  # Qdrant's own default flush interval
_DONE = qm.UpdateResult(operation_id=None, status=qm.UpdateStatus.COMPLETED)


class StoreBusyError(OSError):
    """Another process holds the store."""


class EdgeClient:
    """Collections of Edge shards under one folder, used through qdrant-client's method names and models.

    Cluster-only arguments (shard keys, consistency, timeouts) are accepted and ignored, as local mode does.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._lock_fd)
            raise StoreBusyError(f"{root} is open in another process") from exc
        self._lock = threading.RLock()
        self._shards: dict[str, edge.EdgeShard] = {}
        self._last_flush: dict[str, float] = {}  # the collections written to, and when each was flushed
        self._mirrors: dict[str, edge.EdgeShard] = {}  # collection -> the shard it is being compacted into
        self._compactions: dict[str, threading.Lock] = {}
        self._closed = False
        self._catalog = EdgeCatalog(root / CATALOG)
        (root / "collections").mkdir(exist_ok=True)
        folders = self._catalog.folders()
        for folder in (root / "collections").iterdir():
            if folder.name not in folders:
                shutil.rmtree(folder)  # a create, delete or compaction killed half-way

    # Collections, metadata and aliases: the catalog.

    def get_collections(self) -> qm.CollectionsResponse:
        with self._lock:
            self._check_open()
            names = list(self._catalog.collections)
            return qm.CollectionsResponse(collections=[qm.CollectionDescription(name=n) for n in names])

    def collection_exists(self, collection_name: str) -> bool:
        with self._lock:
            self._check_open()
            return self._catalog.exists(collection_name)

    def get_aliases(self) -> qm.CollectionsAliasesResponse:
        with self._lock:
            self._check_open()
            pairs = self._catalog.aliases.items()
            return qm.CollectionsAliasesResponse(
                aliases=[qm.AliasDescription(alias_name=a, collection_name=c) for a, c in pairs]
            )

    def create_collection(
        self,
        collection_name: str,
        vectors_config: dict[str, qm.VectorParams],
        sparse_vectors_config: dict[str, qm.SparseVectorParams] | None = None,
        metadata: dict[str, Any] | None = None,
        **_cluster: Any,
    ) -> bool:
        """The shard first, then the catalog: a kill in between leaves a folder the next open removes."""
        with self._lock:
            self._check_open()
            EdgeCatalog.check_name(collection_name)
            if self._catalog.exists(collection_name):
                raise ValueError(f"Collection {collection_name} already exists")
            sparse = sparse_vectors_config or {}
            config = convert.edge_shard_config(vectors_config, sparse)
            folder = self.root / "collections" / collection_name
            self._shards[collection_name] = edge.EdgeShard.create(str(folder), config)
            self._catalog.add(collection_name, vectors_config, sparse, metadata)
            return True

    def get_collection(self, collection_name: str) -> qm.CollectionInfo:
        with self._lock:
            name = self._resolve(collection_name)
            shard = self._shard(name)
            return qm.CollectionInfo(
                status=qm.CollectionStatus.GREEN,
                optimizer_status=qm.OptimizersStatusOneOf.OK,
                points_count=shard.count(edge.CountRequest(exact=True)),
                segments_count=shard.info().segments_count,
                payload_schema={},
                config=qm.CollectionConfig(
                    params=self._catalog.params(name),
                    hnsw_config=qm.HnswConfig(m=16, ef_construct=100, full_scan_threshold=10000),
                    optimizer_config=qm.OptimizersConfig(
                        default_segment_number=0, indexing_threshold=0, flush_interval_sec=int(_FLUSH_EVERY_S)
                    ),
                    metadata=self._catalog.metadata(name),
                ),
            )

    def update_collection(self, collection_name: str, metadata: dict[str, Any] | None = None) -> bool:
        """Merges metadata in, as the server does: a key set to None is removed."""
        with self._lock:
            name = self._resolve(collection_name)
            if metadata is None:
                return False
            self._catalog.merge_metadata(name, metadata)
            return True

    def update_collection_aliases(self, change_aliases_operations: Sequence[qm.AliasOperations]) -> bool:
        """Applies every operation, or none: one catalog write."""
        with self._lock:
            self._check_open()
            self._catalog.change_aliases(change_aliases_operations)
            return True

    def delete_collection(self, collection_name: str) -> bool:
        """The catalog first, then the folder: a kill in between leaves a folder the next open removes."""
        with self._lock:
            self._check_open()
            if collection_name not in self._catalog.collections:
                return False
            shard = self._shards.pop(collection_name, None)
            if shard is not None:
                shard.close()
            self._last_flush.pop(collection_name, None)
            folder = self._folder(collection_name)
            self._catalog.remove(collection_name)
            shutil.rmtree(folder, ignore_errors=True)
            return True

    def compact(self, collection_name: str) -> int:
        """Rewrites the collection into a fresh shard holding only its points now; returns how many.

        A delete leaves the deleted points' vectors and payloads in the old segments and write-ahead log
        until Qdrant vacuums them and the log rotates; erasure needs them gone from the disk. The new shard
        is built in a folder of its own, the catalog names it in one atomic write, then the old folder is
        deleted: a kill before the write leaves a folder the next open deletes, after it the old one, ditto.

        Searches and writes go on meanwhile: the points are copied a batch at a time, each under the store's
        lock, and a write to the collection while it is copied goes to both shards, so the new one ends
        with what the old one holds. Measured at 100,000 chunks on 2 cores: the rewrite took 27 s, and hybrid
        searches meanwhile 122 ms at p50 (531 ms at most, the switch) against 23 ms idle; copied under one
        lock, they had waited the whole 22 s (bench/store_bench.py).
        A collection deleted or a store closed meanwhile ends the rewrite: ValueError, nothing left of it.
        """
        with self._lock:
            name = self._resolve(collection_name)
            one_at_a_time = self._compactions.setdefault(name, threading.Lock())
        with one_at_a_time:  # a second erasure's rewrite waits for the first: its delete is in the new WAL
            return self._compact(name)

    def _compact(self, name: str) -> int:
        with self._lock:
            self._resolve(name)
            old, old_folder = self._shard(name), self._folder(name)
            folder = self.root / "collections" / f"{name}.{secrets.token_hex(4)}"  # no collection has a dot
            params = self._catalog.params(name)
            vectors = params.vectors if isinstance(params.vectors, dict) else {}  # the catalog's are named
            new = edge.EdgeShard.create(
                str(folder), convert.edge_shard_config(vectors, params.sparse_vectors or {})
            )
            for field, info in old.info().payload_schema.items():  # indexes first, as on a server
                new.update(edge.UpdateOperation.create_field_index(field, info.params or info.data_type))
            self._mirrors[name] = new
        switched = False
        try:
            offset = self._copy_batch(name, old, new, None)
            while offset is not None:
                offset = self._copy_batch(name, old, new, offset)
            with self._lock:
                self._check_compacting(name, old)
                new.flush()
                self._catalog.set_folder(name, folder.name)  # the switch
                switched = True
                self._shards[name] = new
                del self._mirrors[name]
                self._last_flush.pop(name, None)
                old.close()
                shutil.rmtree(old_folder, ignore_errors=True)
                return new.count(edge.CountRequest(exact=True))
        except BaseException:
            if not switched:
                with self._lock:
                    if self._mirrors.get(name) is new:
                        del self._mirrors[name]
                    new.close()
                    shutil.rmtree(folder, ignore_errors=True)
            raise

    # Points: the shards.

    def create_payload_index(
        self, collection_name: str, field_name: str, field_schema: Any = None, wait: bool = True, **_: Any
    ) -> qm.UpdateResult:
        """Creates the index unless the field has this one already (re-creating it would rebuild it)."""
        with self._lock:
            name = self._resolve(collection_name)
            shard = self._shard(name)
            schema = convert.edge_index_schema(field_schema)
            existing = shard.info().payload_schema.get(field_name)
            if existing is None or repr(existing.params or existing.data_type) != repr(schema):
                self._update(name, edge.UpdateOperation.create_field_index(field_name, schema))
            return _DONE

    def upsert(
        self, collection_name: str, points: Sequence[qm.PointStruct], wait: bool = True, **_: Any
    ) -> qm.UpdateResult:
        with self._lock:
            name = self._resolve(collection_name)
            if not isinstance(points, list | tuple):
                raise ValueError("the Edge store adapter takes a list of PointStruct")
            self._update(name, edge.UpdateOperation.upsert_points([convert.edge_point(p) for p in points]))
            return _DONE

    def delete(
        self, collection_name: str, points_selector: Any, wait: bool = True, **_: Any
    ) -> qm.UpdateResult:
        with self._lock:
            name = self._resolve(collection_name)
            selector = points_selector
            if isinstance(selector, qm.FilterSelector):
                selector = selector.filter
            if isinstance(selector, qm.PointIdsList):
                selector = selector.points
            if isinstance(selector, qm.Filter):
                op = edge.UpdateOperation.delete_points_by_filter(
                    convert.edge_filter(selector) or edge.Filter()
                )
            elif isinstance(selector, list):
                op = edge.UpdateOperation.delete_points(list(selector))
            else:
                raise ValueError(f"the Edge store adapter does not take the selector {points_selector!r}")
            self._update(name, op)
            return _DONE

    def count(
        self, collection_name: str, count_filter: qm.Filter | None = None, exact: bool = True, **_: Any
    ) -> qm.CountResult:
        with self._lock:
            shard = self._shard(self._resolve(collection_name))
            return qm.CountResult(
                count=shard.count(edge.CountRequest(exact=exact, filter=convert.edge_filter(count_filter)))
            )

    def facet(
        self,
        collection_name: str,
        key: str,
        facet_filter: qm.Filter | None = None,
        limit: int = 10,
        exact: bool = False,
        **_: Any,
    ) -> qm.FacetResponse:
        with self._lock:
            shard = self._shard(self._resolve(collection_name))
            request = edge.FacetRequest(
                key=key, limit=limit, exact=exact, filter=convert.edge_filter(facet_filter)
            )
            return qm.FacetResponse(
                hits=[qm.FacetValueHit(value=h.value, count=h.count) for h in shard.facet(request).hits]
            )

    def scroll(
        self,
        collection_name: str,
        scroll_filter: qm.Filter | None = None,
        limit: int = 10,
        offset: qm.ExtendedPointId | None = None,
        with_payload: bool | Sequence[str] = True,
        with_vectors: bool = False,
        **_: Any,
    ) -> tuple[list[qm.Record], qm.ExtendedPointId | None]:
        if with_vectors:
            raise ValueError("the Edge store adapter does not return vectors")
        with self._lock:
            shard = self._shard(self._resolve(collection_name))
            request = edge.ScrollRequest(
                offset=offset,
                limit=limit,
                filter=convert.edge_filter(scroll_filter),
                with_payload=edge_query.payload_selector(with_payload),
            )
            records, next_offset = shard.scroll(request)
            points = [qm.Record(id=convert.point_id_out(r.id), payload=r.payload) for r in records]
            return points, None if next_offset is None else convert.point_id_out(next_offset)

    def query_points(
        self,
        collection_name: str,
        query: Any = None,
        using: str | None = None,
        prefetch: qm.Prefetch | list[qm.Prefetch] | None = None,
        query_filter: qm.Filter | None = None,
        limit: int = 10,
        offset: int | None = None,
        with_payload: bool | Sequence[str] = True,
        score_threshold: float | None = None,
        **_: Any,
    ) -> QueryResponse:
        """A nearest-neighbour query on one named vector, or RRF over prefetches of such queries."""
        with self._lock:
            shard = self._shard(self._resolve(collection_name))
            page = edge_query.Page(limit, offset or 0, with_payload, score_threshold)
            if prefetch:
                stages = prefetch if isinstance(prefetch, list) else [prefetch]
                return edge_query.fused(shard, stages, query, query_filter, page)
            return edge_query.nearest(shard, query, using, query_filter, page)

    def close(self) -> None:
        """Vacuums and flushes the shards written to, then lets another process open the store."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                for name, shard in self._shards.items():
                    if name in self._last_flush:
                        shard.optimize()
                        shard.flush()
                    shard.close()
            finally:
                self._shards.clear()
                os.close(self._lock_fd)  # releases the flock

    # Internals.

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the Edge store is closed")

    def _resolve(self, name: str) -> str:
        self._check_open()
        return self._catalog.resolve(name)

    def _folder(self, name: str) -> Path:
        return self.root / "collections" / self._catalog.folder(name)

    def _shard(self, name: str) -> edge.EdgeShard:
        shard = self._shards.get(name)
        if shard is None:
            shard = self._shards[name] = edge.EdgeShard.load(str(self._folder(name)))
        return shard

    def _copy_batch(self, name: str, old: edge.EdgeShard, new: edge.EdgeShard, offset: Any) -> Any:
        """One batch of a compaction, from offset; the next offset, None after the last batch."""
        with self._lock:
            self._check_compacting(name, old)
            request = edge.ScrollRequest(offset=offset, limit=512, with_payload=True, with_vector=True)
            records, offset = old.scroll(request)
            points = [edge.Point(id=r.id, vector=r.vector or {}, payload=r.payload) for r in records]
            new.update(edge.UpdateOperation.upsert_points(points))
            return offset

    def _check_compacting(self, name: str, old: edge.EdgeShard) -> None:
        if self._closed or self._shards.get(name) is not old:
            raise ValueError(f"Collection {name} was deleted or closed while it was compacted")

    def _update(self, name: str, op: edge.UpdateOperation) -> None:
        """A write: to the collection's shard, and to the one it is being compacted into."""
        self._shard(name).update(op)
        mirror = self._mirrors.get(name)
        if mirror is not None:
            mirror.update(op)
        self._written(name)

    def _written(self, name: str) -> None:
        now = time.monotonic()
        last = self._last_flush.setdefault(name, now)
        if now - last >= _FLUSH_EVERY_S:
            self._shards[name].flush()
            self._last_flush[name] = now
