"""Packaged embedding models compared on retrieval quality and speed, side by side in one run.

Two labelled query sets, scored at document level (a hit counts if its chunk is from the right document):
- examples: hand-written paraphrased questions over examples/ (bench/example_questions.jsonl);
- readmes: known-item search over the long descriptions of the packages installed in this venv,
  queried by each package's one-line summary (the summary sentence is removed from the text).

Run: make bench-embedders   (installs the optional all-mpnet-base-v2 parts first)
"""

import argparse
import json
import os
import re
import shutil
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ragserve.errors import ModelNotFoundError
from ragserve.ingest.embedding import DenseEmbedder
from ragserve.ingest.runtime import IngestRuntime
from ragserve.ingest.search import Retriever
from ragserve.settings import Settings

MODELS = ["all-MiniLM-L6-v2", "all-mpnet-base-v2"]
MODES = ["dense", "bm25", "hybrid"]
ROOT = Path(__file__).resolve().parent.parent


def readme_corpus(out: Path, n_docs: int, max_chars: int) -> list[dict[str, str]]:
    """Writes one Markdown file per installed package description; returns the known-item queries."""
    out.mkdir(parents=True)
    seen, queries = set(), []
    dists = sorted(metadata.distributions(), key=lambda d: (d.metadata["Name"] or "").lower())
    for dist in dists:
        name = (dist.metadata["Name"] or "").lower()
        summary = (dist.metadata["Summary"] or "").strip()
        body = dist.metadata.get_payload() or dist.metadata["Description"] or ""  # type: ignore[attr-defined]
        if name in seen or len(summary) < 25 or len(body) < 1500:
            continue
        seen.add(name)
        text = re.sub(re.escape(summary), " ", body, flags=re.IGNORECASE)[:max_chars]
        (out / f"{name}.md").write_text(text, encoding="utf-8")
        queries.append({"tenant": "readmes", "query": summary, "source": f"{name}.md"})
        if len(queries) == n_docs:
            break
    return queries


def score(retriever: Retriever, queries: list[dict[str, str]], mode: str) -> dict[str, float]:
    ranks = []
    for q in queries:
        hits = retriever.search(q["tenant"], q["query"], k=30, mode=mode)  # type: ignore[arg-type]
        docs = list(dict.fromkeys(h.source for h in hits))  # first appearance order, doc level
        ranks.append(docs.index(q["source"]) + 1 if q["source"] in docs else None)
    n = len(ranks)
    return {
        "recall@1": round(sum(1 for r in ranks if r == 1) / n, 3),
        "recall@5": round(sum(1 for r in ranks if r and r <= 5) / n, 3),
        "mrr@10": round(sum(1 / r for r in ranks if r and r <= 10) / n, 3),
    }


def evaluate(model: str, work: Path, sets: dict[str, list[dict[str, str]]], readmes: Path) -> dict[str, Any]:
    settings = Settings(data_dir=work / model, embedding_model=model)
    embedder = DenseEmbedder.load(model, settings.models_dir, settings.embed_batch_size)
    with IngestRuntime.open(settings, embedder) as rt:
        reindexer = rt.reindexer()
        reindexer.run(ROOT / "examples" / "acme" / "docs", "acme")
        reindexer.run(ROOT / "examples" / "globex" / "docs", "globex")
        report = reindexer.run(readmes, "readmes")
        retriever = rt.retriever()
        t0 = time.perf_counter()
        for q in sets["readmes"][:50]:
            embedder.embed_query(q["query"])
        query_ms = (time.perf_counter() - t0) / min(50, len(sets["readmes"])) * 1000
        quality = {name: {mode: score(retriever, qs, mode) for mode in MODES} for name, qs in sets.items()}
    return {
        "dim": embedder.dim,
        "index_chunks_per_s": round(report.chunks_embedded / report.seconds, 1),
        "chunks": report.chunks_embedded,
        "query_embed_ms": round(query_ms, 1),
        "quality": quality,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=80)
    parser.add_argument("--max-chars", type=int, default=6000)
    parser.add_argument("--out", type=Path, default=Path("bench/results/embedders.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ragserve-embedders-"))
    readmes = work / "readmes"
    questions = ROOT / "bench" / "example_questions.jsonl"
    sets = {
        "examples": [json.loads(line) for line in questions.read_text().splitlines() if line.strip()],
        "readmes": readme_corpus(readmes, args.docs, args.max_chars),
    }
    print(f"query sets: examples {len(sets['examples'])}, readmes {len(sets['readmes'])}")
    results: dict[str, Any] = {}
    for model in MODELS:
        try:
            results[model] = evaluate(model, work, sets, readmes)
        except ModelNotFoundError as exc:
            print(f"{model}: skipped ({exc})")
            continue
        r = results[model]
        speed = f"index {r['index_chunks_per_s']} chunks/s, query {r['query_embed_ms']} ms"
        print(f"\n{model}: dim {r['dim']}, {speed}")
        for set_name, by_mode in r["quality"].items():
            for mode, m in by_mode.items():
                figures = f"R@1 {m['recall@1']:.3f}  R@5 {m['recall@5']:.3f}  MRR@10 {m['mrr@10']:.3f}"
                print(f"  {set_name:8s} {mode:6s} {figures}")
    if len(results) == 2:
        a, b = (results[m] for m in MODELS)
        print(f"\nspeed, {MODELS[0]} / {MODELS[1]}: {a['index_chunks_per_s'] / b['index_chunks_per_s']:.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
