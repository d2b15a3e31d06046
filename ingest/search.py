"""Hybrid retrieval for one tenant: the one search function the CLI and the chat service both call."""

from dataclasses import asdict, dataclass
from typing import Any

from ragserve.ingest.embedding import Embedder
from ragserve.ingest.index import IndexSpec, QdrantIndex, SearchMode
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
        embedder: Embedder,
        sparse: Bm25Encoder,
        spec: IndexSpec,
        prefetch_limit: int = 40,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.sparse = sparse
        self.spec = spec
        self.prefetch_limit = prefetch_limit
        self._checked = False

    def search(self, tenant: str, query: str, k: int = 5, mode: SearchMode = "hybrid") -> list[Hit]:
        check_tenant(tenant)
        if not self._checked:
            self.index.require(self.spec)
            self._checked = True
        if not query.strip():
            return []
        dense = self.embedder.embed_query(query)
        sparse = self.sparse.encode_query(query)
        points = self.index.query(tenant, dense, sparse, k, max(self.prefetch_limit, k), mode)
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
