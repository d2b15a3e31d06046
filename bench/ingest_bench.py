"""Ingest benchmark, every figure measured side by side in one run on a generated corpus.

1. Whole-pipeline chunks/s (scan, extract, chunk, dense + BM25, upsert with wait) against the raw
   SentenceTransformer.encode of the very same chunk texts at the same batch size. Target >= 0.85.
2. Re-index after one file changed, as a fraction of the full index time. Target <= 5%.
3. Hybrid search latency, p50 and p95.

Run: make bench   (or: python -m bench.ingest_bench --files 500)
"""

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.stats import summary_ms
from ragserve.ingest.embedding import DenseEmbedder
from ragserve.ingest.extract import extract_text
from ragserve.ingest.runtime import IngestRuntime
from ragserve.ingest.sources import scan_folder
from ragserve.settings import Settings
from tests.support.documents import make_corpus

TENANT = "bench"


def _runtime(data_dir: Path, embedder: DenseEmbedder) -> IngestRuntime:
    rt = IngestRuntime.open(Settings(data_dir=data_dir), embedder)
    return rt


def _chunk_texts(rt: IngestRuntime, docs: Path) -> list[str]:
    scan = scan_folder(docs, rt.settings.max_file_bytes)
    texts: list[str] = []
    for f in scan.files:
        text = extract_text(f.format, f.path.read_bytes())
        texts.extend(c.embed_text for c in rt.chunker.chunk(f.doc_id, text, f.format))
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best of each is kept")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("bench/results/ingest.json"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ragserve-bench-"))
    docs = work / "docs"
    make_corpus(docs, args.files)
    settings = Settings(data_dir=work / "probe")
    embedder = DenseEmbedder.load(settings.embedding_model, settings.models_dir, settings.embed_batch_size)
    probe = _runtime(work / "probe", embedder)
    texts = _chunk_texts(probe, docs)
    probe.close()
    print(
        f"corpus: {args.files} files, {len(texts)} chunks, model {embedder.name}, batch {embedder.batch_size}"
    )
    embedder.embed_documents(texts[:64])  # warm-up

    raw_times, full_times, full_chunks = [], [], 0
    for round_ in range(args.rounds):
        t0 = time.perf_counter()
        embedder.embed_documents(texts)
        raw_times.append(time.perf_counter() - t0)
        data_dir = work / f"run{round_}"
        with _runtime(data_dir, embedder) as rt:
            report = rt.reindexer().run(docs, TENANT)
        full_times.append(report.seconds)
        full_chunks = report.chunks_embedded
        print(f"round {round_}: raw encode {raw_times[-1]:.1f}s, pipeline {full_times[-1]:.1f}s")
        if round_ < args.rounds - 1:
            shutil.rmtree(data_dir)
    raw_cps = len(texts) / min(raw_times)
    pipe_cps = full_chunks / min(full_times)

    rng = random.Random(3)
    last_dir = work / f"run{args.rounds - 1}"
    with _runtime(last_dir, embedder) as rt:
        changed = rng.choice(sorted(docs.rglob("*.md")))
        changed.write_text(changed.read_text() + "\n\nOne more closing paragraph.\n", encoding="utf-8")
        incremental = rt.reindexer().run(docs, TENANT)
        retriever = rt.retriever()
        queries = [f"what is the reference code for document {rng.randrange(args.files)}" for _ in range(20)]
        queries += [
            " ".join(rng.sample(texts[rng.randrange(len(texts))].split(), 6)) for _ in range(args.queries)
        ]
        for q in queries[:10]:
            retriever.search(TENANT, q, k=5)  # warm-up
        latencies = []
        for q in queries:
            t0 = time.perf_counter()
            retriever.search(TENANT, q, k=5)
            latencies.append(time.perf_counter() - t0)

    results = {
        "files": args.files,
        "chunks": len(texts),
        "raw_encode_chunks_per_s": round(raw_cps, 1),
        "pipeline_chunks_per_s": round(pipe_cps, 1),
        "pipeline_over_raw": round(pipe_cps / raw_cps, 3),
        "full_index_s": round(min(full_times), 2),
        "incremental_1_file_s": round(incremental.seconds, 3),
        "incremental_over_full": round(incremental.seconds / min(full_times), 4),
        "incremental_chunks_embedded": incremental.chunks_embedded,
        "search": {"queries": len(latencies), **summary_ms(latencies)},
    }
    print(json.dumps(results, indent=2))
    print(
        f"pipeline/raw = {results['pipeline_over_raw']:.3f} (target >= 0.85); "
        f"incremental/full = {100 * results['incremental_over_full']:.2f}% (target <= 5%); "
        f"search p50 {results['search']['p50_ms']} ms, p95 {results['search']['p95_ms']} ms"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
