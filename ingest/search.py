"""Hybrid retrieval for one tenant: the one search function the CLI and the chat service both call.

Queries go to the live collection and are embedded with the model it was built with, read from its
metadata, not from the settings: during a rebuild with another model the old index keeps answering, and
when the alias moves to the new one the next query follows it (blue_green.py).
"""

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from qdrant_client import models as qm

from ragserve.errors import IndexMismatchError, IndexNotFoundError
from ragserve.ingest.blue_green import Collections, LiveCollection
from ragserve.ingest.embedding import Embedder
from ragserve.ingest.index import SCHEMA_VERSION, QdrantIndex, SearchMode
from ragserve.ingest.sparse import Bm25Encoder
from ragserve.ingest.tenancy import check_tenant

__all__ = ["Hit", "Retriever"]


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk, citable by its source, heading and chunk id."""

    source: str
    heading: str
    chunk_id: str
    score: float
    text: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Retriever:
    """Embeds a query both ways and asks Qdrant for the RRF fusion of the two candidate lists."""

    def __init__(
        self,
        index: QdrantIndex,
        embedder_for: Callable[[str], Embedder],
        sparse: Bm25Encoder,
        prefetch_limit: int = 40,
    ) -> None:
        """`embedder_for`: the embedder for a model name (the live collection's)."""
        self.index = index
        self.collections = Collections(index)
        self.embedder_for = embedder_for
        self.sparse = sparse
        self.prefetch_limit = prefetch_limit
        self._checked: tuple[str, Embedder] | None = None  # the live collection last seen, and its embedder

    @property
    def embedder(self) -> Embedder:
        """The model the live collection was built with."""
        return self._live_embedder()[1]

    def search(
        self,
        tenant: str,
        query: str,
        k: int = 5,
        mode: SearchMode = "hybrid",
        sources: Sequence[str] | None = None,
    ) -> list[Hit]:
        """The tenant's best `k` chunks for the query; only those of `sources` (document sources) if given.
        A hybrid hit's score is the RRF of its two ranks: 1 for first in both, 0.5 for first in one."""
        check_tenant(tenant)
        name, embedder = self._live_embedder()
        if not query.strip() or (sources is not None and not sources):
            return []
        sparse = self.sparse.encode_query(query)
        dense = embedder.embed_query(query)
        for _attempt in range(3):
            try:
                with self.index.lock:  # in this process, no switch can fall between the check and the query
                    if self.collections.live_name() == name:
                        limit = max(self.prefetch_limit, k)
                        return _hits(
                            self.index.view(name).query(tenant, dense, sparse, k, limit, mode, sources)
                        )
            except Exception:
                if self.collections.live_name() == name:
                    raise  # a real failure, not a collection deleted by another process's switch
            # The alias moved since it was read: follow it, with that collection's model.
            name, moved = self._live_embedder()
            if moved is not embedder:
                embedder, dense = moved, moved.embed_query(query)
        raise IndexNotFoundError("the live index kept changing during the query; try again")

    def document_text(self, tenant: str, source: str) -> list[str]:
        """A document's chunks' text, in order, from the live collection."""
        check_tenant(tenant)
        with self.index.lock:
            name = self.collections.live_name()
            return [] if name is None else self.index.view(name).document_text(tenant, source)

    def _live_embedder(self) -> tuple[str, Embedder]:
        name = self.collections.live_name()
        if name is None:
            raise IndexNotFoundError(
                "nothing is indexed yet: run `ragserve reindex DOCS_DIR --tenant T` first"
            )
        if self._checked is None or self._checked[0] != name:
            live = self.collections.live()
            if live is None:
                raise IndexNotFoundError("the index disappeared: run `ragserve reindex DOCS_DIR --tenant T`")
            self._checked = (live.name, self._compatible_embedder(live))
        return self._checked

    def _compatible_embedder(self, live: LiveCollection) -> Embedder:
        built = live.metadata
        model = built.get("embedding_model")
        if built.get("ragserve_schema") != SCHEMA_VERSION or not isinstance(model, str):
            raise IndexMismatchError(
                f"the collection {live.name!r} was not built by this version of ragserve: "
                "run `ragserve reindex` to rebuild it"
            )
        if built.get("sparse") != self.sparse.params:
            raise IndexMismatchError(
                f"the index's BM25 vectors were made with {built.get('sparse')}, this version makes "
                f"{self.sparse.params}: run `ragserve reindex` to rebuild it"
            )
        embedder = self.embedder_for(model)
        if embedder.dim != built.get("dim"):
            raise IndexMismatchError(
                f"the index was built with {model!r} ({built.get('dim')} dimensions); that name now loads a "
                f"model of {embedder.dim}: run `ragserve reindex` to rebuild it"
            )
        return embedder


def _hits(points: list[qm.ScoredPoint]) -> list[Hit]:
    return [
        Hit(
            source=str(p.payload["source"]),
            heading=str(p.payload.get("heading", "")),
            chunk_id=str(p.id),
            score=float(p.score),
            text=str(p.payload["text"]),
        )
        for p in points
        if p.payload
    ]
