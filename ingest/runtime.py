"""Builds the ingest components from settings, once, and hands them to the commands that need them."""

import threading
from functools import cached_property
from types import TracebackType

from ragserve.ingest.chunking import Chunker
from ragserve.ingest.embedding import DenseEmbedder, Embedder
from ragserve.ingest.index import IndexSpec, QdrantIndex
from ragserve.ingest.reindex import Reindexer
from ragserve.ingest.search import Retriever
from ragserve.ingest.sparse import Bm25Encoder
from ragserve.settings import Settings

__all__ = ["IngestRuntime"]


class IngestRuntime:
    """The index connection, plus the embedder and chunker, loaded only when a command needs them."""

    def __init__(self, settings: Settings, index: QdrantIndex, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.index = index
        self._given_embedder = embedder
        self._other_embedders: dict[str, Embedder] = {}
        self._loading = threading.Lock()

    @classmethod
    def open(cls, settings: Settings, embedder: Embedder | None = None) -> "IngestRuntime":
        """`embedder`: one already loaded (a test's, a benchmark's), else the settings' model on first use."""
        return cls(settings, QdrantIndex.connect(settings), embedder)

    def __enter__(self) -> "IngestRuntime":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.index.close()

    @cached_property
    def embedder(self) -> Embedder:
        if self._given_embedder is not None:
            return self._given_embedder
        s = self.settings
        return DenseEmbedder.load(s.embedding_model, s.models_dir, s.embed_batch_size)

    @cached_property
    def indexing_embedder(self) -> Embedder:
        """The same model, loaded a second time for indexing (chunking's token counts and the embedding), so a
        query's embedding never queues behind an upload's batch; a given embedder serves both."""
        if self._given_embedder is not None:
            return self._given_embedder
        s = self.settings
        return DenseEmbedder.load(s.embedding_model, s.models_dir, s.embed_batch_size)

    def embedder_for(self, model: str) -> Embedder:
        """The settings' embedder, or another model an index was built with (loaded once, kept)."""
        own = self._given_embedder.name if self._given_embedder is not None else self.settings.embedding_model
        if model == own:
            return self.embedder
        with self._loading:
            if model not in self._other_embedders:
                s = self.settings
                self._other_embedders[model] = DenseEmbedder.load(model, s.models_dir, s.embed_batch_size)
            return self._other_embedders[model]

    @cached_property
    def sparse(self) -> Bm25Encoder:
        return Bm25Encoder()

    @cached_property
    def chunker(self) -> Chunker:
        max_tokens = min(self.settings.chunk_tokens, self.indexing_embedder.max_tokens)
        return Chunker(self.indexing_embedder.count_tokens, max_tokens, self.settings.chunk_overlap)

    @cached_property
    def spec(self) -> IndexSpec:
        model = self.indexing_embedder
        return IndexSpec(model.name, model.dim, self.chunker.params, self.sparse.params)

    def reindexer(self) -> Reindexer:
        s = self.settings
        return Reindexer(
            self.index,
            self.indexing_embedder,
            self.sparse,
            self.chunker,
            self.spec,
            s.max_file_bytes,
            s.embed_batch_size,
        )

    def retriever(self) -> Retriever:
        return Retriever(self.index, self.embedder_for, self.sparse)
