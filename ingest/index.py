"""The Qdrant collection: its schema, deterministic point ids, and tenant-filtered reads and writes."""

import functools
import hashlib
import json
import threading
import uuid
import warnings
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar

from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from ragserve.errors import StoreUnavailableError
from ragserve.ingest.chunking import Chunk
from ragserve.ingest.embedded import StoreClient, open_embedded
from ragserve.ingest.sharding import ClusterLayout
from ragserve.ingest.sparse import SparseEmbedding
from ragserve.settings import Settings

__all__ = ["DENSE", "SPARSE", "DocState", "IndexSpec", "QdrantIndex", "SearchMode", "point_id"]

DENSE = "dense"
SPARSE = "bm25"
SCHEMA_VERSION = 1
_POINT_NAMESPACE = uuid.UUID("6f1c9a52-3d0e-5b8e-9a51-2f4e8c7d1b30")
_STATE_FIELDS = ["source", "chunk_index", "n_chunks", "doc_hash"]

SearchMode = Literal["hybrid", "dense", "bm25"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _locked(
    method: Callable[Concatenate["QdrantIndex", _P], _R],
) -> Callable[Concatenate["QdrantIndex", _P], _R]:
    """The embedded client is not thread-safe, and the service searches while the writer thread writes."""

    def wrapper(self: "QdrantIndex", /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self.lock:
            return method(self, *args, **kwargs)

    functools.update_wrapper(wrapper, method)
    return wrapper


def point_id(tenant: str, source: str, chunk_index: int) -> str:
    """uuid5 of (tenant, source, chunk index): a re-run writes over the same points, never beside them."""
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{tenant}\x00{source}\x00{chunk_index}"))


@dataclass(frozen=True)
class IndexSpec:
    """What the vectors in a collection were made with; two different specs never share a collection."""

    embedding_model: str
    dim: int
    chunking: dict[str, Any]
    sparse: dict[str, Any]

    @property
    def fingerprint(self) -> str:
        body = json.dumps({"schema": SCHEMA_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def metadata(self) -> dict[str, Any]:
        return {"ragserve_fingerprint": self.fingerprint, "ragserve_schema": SCHEMA_VERSION, **asdict(self)}


@dataclass(frozen=True)
class DocState:
    """A document as the index holds it: complete when all its chunks carry one hash and none is missing."""

    doc_hash: str | None
    complete: bool
    max_index: int


class QdrantIndex:
    """One collection holding every tenant's chunks, partitioned by the `tenant` payload key.

    `collection` is the name the service queries: an alias of the live physical collection (see
    blue_green.py). `view(name)` reads and writes one physical collection through the same client and lock.
    `layout`: the cluster settings new collections get, and the shard-key routing of every tenant's requests
    (sharding.py).
    """

    def __init__(
        self,
        client: StoreClient,
        collection: str,
        lock: "threading.RLock | None" = None,
        layout: ClusterLayout | None = None,
    ) -> None:
        self.client = client
        self.collection = collection
        self.lock = lock if lock is not None else threading.RLock()
        self.layout = layout if layout is not None else ClusterLayout()

    def view(self, collection: str) -> "QdrantIndex":
        """The same store, reading and writing the named collection."""
        return QdrantIndex(self.client, collection, self.lock, self.layout)

    @classmethod
    def connect(cls, settings: Settings) -> "QdrantIndex":
        """A Qdrant server when a URL is set, else the embedded store under the data dir (embedded.py)."""
        if settings.qdrant_url:
            key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
            client = QdrantClient(url=settings.qdrant_url, api_key=key, timeout=settings.qdrant_timeout_s)
            with _translate_errors(settings.qdrant_url):
                client.get_collections()
            return cls(client, settings.collection, layout=ClusterLayout.from_settings(settings))
        return cls(open_embedded(settings), settings.collection, layout=ClusterLayout.from_settings(settings))

    @_locked
    def close(self) -> None:
        self.client.close()

    @_locked
    def ping(self) -> None:
        """A cheap real call, for readiness checks."""
        self.client.get_collections()

    @_locked
    def create(self, spec: IndexSpec, promoted: Collection[str] = ()) -> None:
        """Creates this collection for spec's vectors, with spec recorded in its metadata, spread over the
        cluster as the layout says; `promoted`: tenants that get a shard key of their own at once."""
        self.client.create_collection(
            self.collection,
            vectors_config={DENSE: qm.VectorParams(size=spec.dim, distance=qm.Distance.COSINE)},
            sparse_vectors_config={SPARSE: qm.SparseVectorParams(modifier=qm.Modifier.IDF)},
            metadata=spec.metadata(),
            **self.layout.collection_params(),
        )
        self.layout.create_shard_keys(self.client, self.collection, promoted)
        self.ensure_payload_indexes()

    @_locked
    def metadata(self) -> dict[str, Any]:
        return dict(self.client.get_collection(self.collection).config.metadata or {})

    @_locked
    def document_states(self, tenant: str) -> dict[str, DocState]:
        """Reads back what the index holds for a tenant: the re-index plan is derived from this alone."""
        seen: dict[str, tuple[set[str], set[int], set[int]]] = {}
        for payload in self._scroll(tenant, _STATE_FIELDS):
            hashes, indexes, counts = seen.setdefault(str(payload["source"]), (set(), set(), set()))
            hashes.add(str(payload["doc_hash"]))
            indexes.add(int(payload["chunk_index"]))
            counts.add(int(payload["n_chunks"]))
        states = {}
        for source, (hashes, indexes, counts) in seen.items():
            one_version = len(hashes) == 1 and len(counts) == 1
            complete = one_version and indexes == set(range(next(iter(counts))))
            states[source] = DocState(next(iter(hashes)) if one_version else None, complete, max(indexes))
        return states

    @_locked
    def upsert(
        self,
        tenant: str,
        chunks: Sequence[Chunk],
        dense: Sequence[Sequence[float]],
        sparse: Sequence[SparseEmbedding],
        doc_meta: dict[str, tuple[str, int]],
    ) -> None:
        """Writes chunks with wait=True; doc_meta maps each source to (content hash, chunk count)."""
        points = []
        for chunk, vector, bm25 in zip(chunks, dense, sparse, strict=True):
            doc_hash, n_chunks = doc_meta[chunk.source]
            points.append(
                qm.PointStruct(
                    id=point_id(tenant, chunk.source, chunk.index),
                    vector={
                        DENSE: list(vector),
                        SPARSE: qm.SparseVector(indices=bm25.indices, values=bm25.values),
                    },
                    payload={
                        "tenant": tenant,
                        "source": chunk.source,
                        "chunk_index": chunk.index,
                        "n_chunks": n_chunks,
                        "doc_hash": doc_hash,
                        "heading": chunk.heading,
                        "text": chunk.text,
                    },
                )
            )
        self.client.upsert(self.collection, points, wait=True, **self.layout.route(tenant))

    @_locked
    def delete_tail(self, tenant: str, source: str, keep: int) -> None:
        """Removes a document's chunks from index `keep` on: what is left of a longer old version."""
        extra = [
            qm.FieldCondition(key="source", match=qm.MatchValue(value=source)),
            qm.FieldCondition(key="chunk_index", range=qm.Range(gte=keep)),
        ]
        self._delete(tenant, _tenant_filter(tenant, *extra))

    @_locked
    def delete_documents(self, tenant: str, sources: Sequence[str]) -> None:
        if sources:
            in_sources = qm.FieldCondition(key="source", match=qm.MatchAny(any=list(sources)))
            self._delete(tenant, _tenant_filter(tenant, in_sources))

    @_locked
    def delete_tenant(self, tenant: str) -> None:
        """Every point of the tenant's in this collection."""
        self._delete(tenant, _tenant_filter(tenant))

    @_locked
    def document_text(self, tenant: str, source: str) -> list[str]:
        """A document's chunks' text, in order."""
        in_source = qm.FieldCondition(key="source", match=qm.MatchValue(value=source))
        chunks = self._scroll(tenant, ["chunk_index", "text"], in_source)
        return [str(p["text"]) for p in sorted(chunks, key=lambda p: int(p["chunk_index"]))]

    @_locked
    def count_chunks(self, tenant: str) -> int:
        flt, route = _tenant_filter(tenant), self.layout.route(tenant)
        return self.client.count(self.collection, count_filter=flt, exact=True, **route).count

    @_locked
    def count_documents(self, tenant: str) -> int:
        return len({payload["source"] for payload in self._scroll(tenant, ["source"])})

    @_locked
    def query(
        self,
        tenant: str,
        dense: Sequence[float],
        sparse: SparseEmbedding,
        k: int,
        prefetch_limit: int,
        mode: SearchMode = "hybrid",
        sources: Sequence[str] | None = None,
    ) -> list[qm.ScoredPoint]:
        """Dense and BM25 candidates fused with RRF in Qdrant, every stage filtered by tenant, and to the
        chunks of `sources` (documents) when given."""
        within = (
            [] if sources is None else [qm.FieldCondition(key="source", match=qm.MatchAny(any=list(sources)))]
        )
        flt = _tenant_filter(tenant, *within)
        sparse_query = qm.SparseVector(indices=sparse.indices, values=sparse.values)
        if mode == "dense" or (mode == "hybrid" and not sparse.indices):
            return self._points(tenant, query=list(dense), using=DENSE, query_filter=flt, limit=k)
        if mode == "bm25":
            return (
                self._points(tenant, query=sparse_query, using=SPARSE, query_filter=flt, limit=k)
                if sparse.indices
                else []
            )
        prefetch = [
            qm.Prefetch(query=list(dense), using=DENSE, filter=flt, limit=prefetch_limit),
            qm.Prefetch(query=sparse_query, using=SPARSE, filter=flt, limit=prefetch_limit),
        ]
        return self._points(
            tenant, prefetch=prefetch, query=qm.FusionQuery(fusion=qm.Fusion.RRF), query_filter=flt, limit=k
        )

    def _points(self, tenant: str, **kwargs: Any) -> list[qm.ScoredPoint]:
        route = self.layout.route(tenant)
        return self.client.query_points(self.collection, with_payload=True, **kwargs, **route).points

    def _delete(self, tenant: str, flt: qm.Filter) -> None:
        selector = qm.FilterSelector(filter=flt)
        self.client.delete(self.collection, points_selector=selector, wait=True, **self.layout.route(tenant))

    def _scroll(self, tenant: str, fields: list[str], *within: qm.Condition) -> Iterator[dict[str, Any]]:
        offset: Any = None
        while True:
            points, offset = self.client.scroll(
                self.collection,
                scroll_filter=_tenant_filter(tenant, *within),
                limit=2048,
                offset=offset,
                with_payload=fields,
                with_vectors=False,
                **self.layout.route(tenant),
            )
            for point in points:
                yield point.payload or {}
            if offset is None:
                return

    @_locked
    def ensure_payload_indexes(self) -> None:
        # Created before any data is loaded. `tenant` partitions the storage on a server; `source` and
        # `chunk_index` serve the re-index deletes. Edge uses them; local mode ignores them and says so.
        indexes: dict[str, qm.PayloadSchemaParams] = {
            "tenant": qm.KeywordIndexParams(type=qm.KeywordIndexType.KEYWORD, is_tenant=True),
            "source": qm.KeywordIndexParams(type=qm.KeywordIndexType.KEYWORD),
            "chunk_index": qm.IntegerIndexParams(type=qm.IntegerIndexType.INTEGER, lookup=False, range=True),
        }
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Payload indexes have no effect")
            for field_name, schema in indexes.items():
                self.client.create_payload_index(self.collection, field_name, schema, wait=True)


def _tenant_filter(tenant: str, *extra: qm.Condition) -> qm.Filter:
    return qm.Filter(must=[qm.FieldCondition(key="tenant", match=qm.MatchValue(value=tenant)), *extra])


@contextmanager
def _translate_errors(url: str) -> Iterator[None]:
    try:
        yield
    except (ResponseHandlingException, UnexpectedResponse, OSError) as exc:
        raise StoreUnavailableError(f"cannot reach Qdrant at {url}: {exc}") from exc
