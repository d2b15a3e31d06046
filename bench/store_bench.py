"""Embedded store benchmark: Qdrant Edge against qdrant-client's local mode, side by side, as a store grows.

Both stores are written and queried through ragserve's own QdrantIndex (the point ids, payload, tenant
filters and hybrid query the service uses), in one process, alternating: each batch goes to one store and
then the other, each query is timed on one and then the other, so both see the same load on the machine.

The chunks are synthetic, which is fine for latency and says nothing about quality: dense vectors are
random unit vectors of dimension 384 (all-MiniLM-L6-v2's); sparse vectors are BM25 weights, computed as
Bm25Encoder computes them, of 150-term texts drawn from a Zipf law over 30,000 terms; payloads carry an
800-character text. Queries are a stored chunk's vector plus noise, and 3 to 6 terms from below the 200
most frequent. The queried tenant holds every chunk counted; another tenant adds 1% so the filter has work.

Run: make bench   (or: python -m bench.store_bench --sizes 1000,10000 --local-queries 50,20)
"""

import argparse
import json
import shutil
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from bench.stats import summary_ms
from ragserve.ingest.blue_green import Collections
from ragserve.ingest.chunking import Chunk
from ragserve.ingest.index import IndexSpec, QdrantIndex
from ragserve.ingest.sparse import Bm25Encoder, SparseEmbedding
from ragserve.settings import Settings

STORES = ("edge", "local")
TENANT, OTHER = "bench", "other"
DIM, VOCAB, TERMS_PER_CHUNK = 384, 30_000, 150
BATCH = 512  # what the re-index writer sends at once: 8 batches of 64
warnings.filterwarnings("ignore", message="Local mode is not recommended")  # measuring it is the point
TEXT = ("Synthetic chunk text standing in for a paragraph of a company document. " * 12)[:800]


class Corpus:
    """Deterministic synthetic chunks and queries."""

    def __init__(self, seed: int = 11) -> None:
        self.rng = np.random.default_rng(seed)
        ranks = np.arange(1, VOCAB + 1)
        self.zipf = (1 / ranks**1.07) / (1 / ranks**1.07).sum()
        self.bm25 = Bm25Encoder()
        self.vectors: list[np.ndarray] = []

    def batch(
        self, tenant: str, start: int, n: int
    ) -> tuple[list[Chunk], list[list[float]], list[SparseEmbedding]]:
        dense = self.rng.standard_normal((n, DIM)).astype(np.float32)
        dense /= np.linalg.norm(dense, axis=1, keepdims=True)
        if tenant == TENANT:
            self.vectors.extend(dense)
        terms = self.rng.choice(VOCAB, size=(n, TERMS_PER_CHUNK), p=self.zipf)
        chunks = [
            Chunk(f"doc-{(start + i) // 8}.md", (start + i) % 8, "Guide > Part", TEXT) for i in range(n)
        ]
        return chunks, dense.tolist(), [self._weights(row) for row in terms]

    def _weights(self, terms: np.ndarray) -> SparseEmbedding:
        ids, counts = np.unique(terms, return_counts=True)
        b = self.bm25
        norm = b.k1 * (1 - b.b + b.b * len(terms) / b.avg_len)
        return SparseEmbedding(ids.tolist(), (counts * (b.k1 + 1) / (counts + norm)).tolist())

    def query(self) -> tuple[list[float], SparseEmbedding]:
        near = self.vectors[int(self.rng.integers(len(self.vectors)))]
        dense = near + self.rng.normal(0, 0.05, DIM).astype(np.float32)
        dense /= np.linalg.norm(dense)
        terms = sorted(set(self.rng.integers(200, 5_000, int(self.rng.integers(3, 7))).tolist()))
        return dense.tolist(), SparseEmbedding(terms, [1.0] * len(terms))


def _open(work: Path, store: str) -> QdrantIndex:
    return QdrantIndex.connect(Settings(data_dir=work / store, embedded_store=store))  # type: ignore[arg-type]


def _grow(indexes: dict[str, QdrantIndex], corpus: Corpus, held: int, target: int) -> dict[str, list[float]]:
    """Adds chunks up to target, a batch to each store in turn; each store's batch times."""
    times: dict[str, list[float]] = {s: [] for s in indexes}
    for tenant, start, stop in ((TENANT, held, target), (OTHER, held // 100, target // 100)):
        for at in range(start, stop, BATCH):
            chunks, dense, sparse = corpus.batch(tenant, at, min(BATCH, stop - at))
            meta = {c.source: ("0" * 64, 8) for c in chunks}
            for store, index in indexes.items():
                t0 = time.perf_counter()
                index.upsert(tenant, chunks, dense, sparse, meta)
                if tenant == TENANT:
                    times[store].append(time.perf_counter() - t0)
    return times


def _query(
    indexes: dict[str, QdrantIndex], corpus: Corpus, counts: dict[str, int], warm_up: int = 2
) -> dict[str, list[float]]:
    """Hybrid queries (k=5, 40 candidates a side, as the service asks), each store in turn, after warm_up
    untimed ones."""
    times: dict[str, list[float]] = {s: [] for s in indexes}
    for i in range(max(counts.values()) + warm_up):
        dense, sparse = corpus.query()
        for store, index in indexes.items():
            if i < counts[store] + warm_up:
                t0 = time.perf_counter()
                hits = index.query(TENANT, dense, sparse, k=5, prefetch_limit=40)
                if i >= warm_up:
                    times[store].append(time.perf_counter() - t0)
                if len(hits) != 5:
                    raise RuntimeError(f"{store} returned {len(hits)} hits")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--queries", type=int, default=200, help="Edge queries at each size")
    parser.add_argument("--local-queries", default="50,20,5", help="local-mode queries at each size")
    parser.add_argument("--out", type=Path, default=Path("bench/results/store.json"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    local_queries = [int(q) for q in args.local_queries.split(",")]

    work = Path(tempfile.mkdtemp(prefix="ragserve-store-bench-"))
    corpus = Corpus()
    spec = IndexSpec("synthetic", DIM, {}, Bm25Encoder().params)
    indexes = {store: _open(work, store) for store in STORES}
    for index in indexes.values():
        index.create(spec)
    print("synthetic chunks: random unit vectors (dim 384), Zipf-law BM25 vectors, 800-character payloads")
    rows: list[dict[str, object]] = []
    held = 0
    for size, n_local in zip(sizes, local_queries, strict=True):
        batches = _grow(indexes, corpus, held, size)
        held = size
        queries = _query(indexes, corpus, {"edge": args.queries, "local": n_local})
        row = {
            store: {
                "index_batch": {
                    "chunks": BATCH,
                    "batches": len(batches[store]),
                    **summary_ms(batches[store]),
                },
                "hybrid_query": {"queries": len(queries[store]), **summary_ms(queries[store])},
            }
            for store in STORES
        }
        rows.append({"chunks": size, **row})
        _print_row(size, row)
    reopen = {}
    for store, index in indexes.items():
        t0 = time.perf_counter()
        index.close()
        closed = time.perf_counter()
        reopened = _open(work, store)
        reopened.count_chunks(TENANT)  # Edge opens a shard on its first use
        reopen[store] = {"close_s": round(closed - t0, 2), "open_s": round(time.perf_counter() - closed, 2)}
        reopened.close()
    print(
        f"at {held} chunks, close, then open and count: " + "; ".join(f"{s} {v}" for s, v in reopen.items())
    )
    erase = _erase_other(work, held, corpus)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = {"sizes": rows, "close_open": reopen, "erase_tenant": erase}
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


def _erase_other(work: Path, held: int, corpus: Corpus) -> dict[str, Any]:
    """Erasing the other tenant from the Edge store (Collections.erase_tenant: the delete, then the rewrite
    that takes the deleted bytes off the disk), while hybrid queries on the tenant that stays are timed,
    against the same queries before it."""
    index = _open(work, "edge")
    idle = _query({"edge": index}, corpus, {"edge": 50})["edge"]
    during: list[float] = []
    erasing = threading.Thread(target=Collections(index).erase_tenant, args=(OTHER,))
    t0 = time.perf_counter()
    erasing.start()
    while True:  # at least one query, however fast the erasure
        during += _query({"edge": index}, corpus, {"edge": 1}, warm_up=0)["edge"]
        if not erasing.is_alive():
            break
    seconds = time.perf_counter() - t0
    kept = index.count_chunks(TENANT)
    index.close()
    idle_ms = {**summary_ms(idle), "max_ms": round(max(idle) * 1000, 2)}
    during_ms = {**summary_ms(during), "max_ms": round(max(during, default=0) * 1000, 2)}
    print(
        f"erasing a tenant of {held // 100} chunks beside {kept}: {seconds:.2f} s (delete and compaction); "
        f"hybrid query p50/p95/max ms idle {idle_ms['p50_ms']} / {idle_ms['p95_ms']} / {idle_ms['max_ms']}, "
        f"during {during_ms['p50_ms']} / {during_ms['p95_ms']} / {during_ms['max_ms']} ({len(during)} asked)"
    )
    during_ms["queries"] = len(during)
    result = {"kept_chunks": kept, "erased_chunks": held // 100, "seconds": round(seconds, 2)}
    return {**result, "hybrid_query_idle": idle_ms, "hybrid_query_during": during_ms}


def _print_row(size: int, row: dict[str, dict[str, dict[str, float]]]) -> None:
    for what, label in (("index_batch", f"index, {BATCH} chunks a batch"), ("hybrid_query", "hybrid query")):
        edge, local = row["edge"][what], row["local"][what]
        print(
            f"{size:>7} chunks  {label:<28} p50/p95 ms: edge {edge['p50_ms']:>8.2f} / {edge['p95_ms']:>8.2f}"
            f"   local {local['p50_ms']:>9.2f} / {local['p95_ms']:>9.2f}"
            f"   local/edge p50 {local['p50_ms'] / edge['p50_ms']:.1f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
