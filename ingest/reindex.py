"""Re-index one tenant's docs folder: embed only what changed, and survive a kill at any moment.

The plan is derived from the index itself, never from a side file: a document counts as indexed only when
all its points carry its current hash and none is missing. A run killed half-way leaves documents that fail
that test, so the next run simply does them again; deterministic point ids make the re-do overwrite, not add.
A run with another model or chunking writes to a new collection beside the live one (blue_green.py), with
the same plan: a killed build resumes the same way.
"""

import time
from collections import deque
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ragserve.errors import SkipDocument
from ragserve.ingest.blue_green import Collections
from ragserve.ingest.chunking import Chunk, Chunker
from ragserve.ingest.embedding import Embedder
from ragserve.ingest.extract import extract_text
from ragserve.ingest.index import DocState, IndexSpec, QdrantIndex
from ragserve.ingest.sources import Skipped, SourceFile, read_source, scan_folder
from ragserve.ingest.sparse import Bm25Encoder
from ragserve.ingest.tenancy import check_tenant

__all__ = ["ReindexReport", "Reindexer"]

ProgressCallback = Callable[[int, int], None]  # (documents done, documents to do)
# Where a run wrote: the live collection in place, a new one beside it that is not live yet, or a new one
# that went live at the end of this run.
IndexChange = Literal["updated", "building", "switched"]


@dataclass
class ReindexReport:
    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    chunks_embedded: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    index: IndexChange = "updated"
    waiting_for: list[str] = field(default_factory=list)  # tenants still to re-index before the switch

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ReindexReport":
        skipped = [Skipped(str(s["path"]), str(s["reason"])) for s in data.get("skipped", [])]
        counts = {
            name: int(data[name]) for name in ("added", "updated", "deleted", "unchanged", "chunks_embedded")
        }
        return cls(
            **counts,
            skipped=skipped,
            seconds=float(data.get("seconds", 0.0)),
            index=data.get("index", "updated"),
            waiting_for=[str(t) for t in data.get("waiting_for", [])],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "chunks_embedded": self.chunks_embedded,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "seconds": round(self.seconds, 3),
            "index": self.index,
            "waiting_for": self.waiting_for,
        }


@dataclass
class _Pending:
    """A document whose chunks are on their way to the index."""

    source: str
    doc_hash: str
    n_chunks: int
    trim_tail: bool
    unwritten: int


class Reindexer:
    """Brings a tenant's points in line with a docs folder."""

    def __init__(
        self,
        index: QdrantIndex,
        embedder: Embedder,
        sparse: Bm25Encoder,
        chunker: Chunker,
        spec: IndexSpec,
        max_file_bytes: int,
        batch_size: int = 64,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.sparse = sparse
        self.chunker = chunker
        self.spec = spec
        self.max_file_bytes = max_file_bytes
        self.batch_size = batch_size

    def run(
        self,
        docs_dir: Path,
        tenant: str,
        progress: ProgressCallback | None = None,
        tenants: Collection[str] | None = None,
    ) -> ReindexReport:
        """`tenants`: all the tenants a rebuilt collection must hold before it goes live (a config's);
        by default those of the live collection."""
        started = time.perf_counter()
        check_tenant(tenant)
        scan = scan_folder(docs_dir, self.max_file_bytes)
        collections = Collections(self.index)
        target = collections.target(self.spec)
        index = self.index.view(target.name)
        collections.begin_tenant(target, tenant)
        states = index.document_states(tenant)
        report = ReindexReport(skipped=list(scan.skipped))

        present = {f.doc_id for f in scan.files} | {s.path for s in scan.skipped if s.keeps_old_version}
        gone = sorted(set(states) - present)
        index.delete_documents(tenant, gone)
        report.deleted = len(gone)

        todo = [f for f in scan.files if _needs_work(f, states.get(f.doc_id))]
        report.unchanged = len(scan.files) - len(todo)
        with _Writer(self, index, tenant) as writer:
            for done, source in enumerate(todo, start=1):
                self._index_document(source, states.get(source.doc_id), writer, report)
                if progress:
                    progress(done, len(todo))
        if target.building:
            report.waiting_for = collections.finish_tenant(target, tenant, tenants)
            report.index = "building" if report.waiting_for else "switched"
        report.skipped.sort(key=lambda s: s.path)
        report.seconds = time.perf_counter() - started
        return report

    def _index_document(
        self, source: SourceFile, state: DocState | None, writer: "_Writer", report: ReindexReport
    ) -> None:
        try:
            loaded = read_source(source, self.max_file_bytes)
            chunks = self.chunker.chunk(
                source.doc_id, extract_text(source.format, loaded.data), source.format
            )
            if not chunks:
                raise SkipDocument("no text in the document")
        except SkipDocument as skip:
            report.skipped.append(Skipped(source.doc_id, skip.reason))
            # A good old version stays searchable; half of one (from a killed run) does not.
            if state is not None and not state.complete:
                writer.index.delete_documents(writer.tenant, [source.doc_id])
            return
        trim = state is not None and state.max_index >= len(chunks)
        writer.add(chunks, _Pending(source.doc_id, loaded.sha256, len(chunks), trim, len(chunks)))
        report.chunks_embedded += len(chunks)
        if state is None:
            report.added += 1
        else:
            report.updated += 1


def _needs_work(source: SourceFile, state: DocState | None) -> bool:
    return state is None or not state.complete or state.doc_hash != source.sha256


class _Writer:
    """Embeds full batches in the calling thread while one worker thread writes the previous batch to Qdrant.

    Writes happen in order on the single worker, so a document's stale tail is trimmed only after all its
    new chunks are stored.
    """

    _MAX_IN_FLIGHT = 2
    # Chunks go to the model in groups of several batches: sentence-transformers sorts a call's texts by
    # length, so bigger calls waste less compute on padding.
    _BATCHES_PER_FLUSH = 8

    def __init__(self, reindexer: Reindexer, index: QdrantIndex, tenant: str) -> None:
        self.r = reindexer
        self.index = index
        self.tenant = tenant
        self._chunks: list[Chunk] = []
        self._docs: dict[str, _Pending] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qdrant-writer")
        self._in_flight: deque[Future[None]] = deque()

    def __enter__(self) -> "_Writer":
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            if exc_type is None:
                while self._chunks:
                    self._flush()
                while self._in_flight:
                    self._in_flight.popleft().result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=exc_type is not None)

    def add(self, chunks: list[Chunk], doc: _Pending) -> None:
        self._docs[doc.source] = doc
        self._chunks.extend(chunks)
        while len(self._chunks) >= self._flush_size:
            self._flush()

    @property
    def _flush_size(self) -> int:
        return self.r.batch_size * self._BATCHES_PER_FLUSH

    def _flush(self) -> None:
        batch, self._chunks = self._chunks[: self._flush_size], self._chunks[self._flush_size :]
        dense = self.r.embedder.embed_documents([c.embed_text for c in batch])
        finished = []
        for chunk in batch:
            doc = self._docs[chunk.source]
            doc.unwritten -= 1
            if doc.unwritten == 0:
                finished.append(self._docs.pop(chunk.source))
        meta = {d.source: (d.doc_hash, d.n_chunks) for d in [*self._docs.values(), *finished]}
        while len(self._in_flight) >= self._MAX_IN_FLIGHT:
            self._in_flight.popleft().result()
        self._in_flight.append(self._pool.submit(self._write, batch, dense.tolist(), meta, finished))

    def _write(
        self,
        batch: list[Chunk],
        dense: list[list[float]],
        meta: dict[str, tuple[str, int]],
        finished: list[_Pending],
    ) -> None:
        # BM25 runs here, on the writer thread, so it overlaps with the next batch's embedding.
        sparse = [self.r.sparse.encode_document(c.embed_text) for c in batch]
        self.index.upsert(self.tenant, batch, dense, sparse, meta)
        for doc in finished:
            if doc.trim_tail:
                self.index.delete_tail(self.tenant, doc.source, doc.n_chunks)
