"""Documents over HTTP, measured against a real `ragserve up` (vLLM, the embedded Qdrant, SQLite state).

1. Upload to searchable: a 10-page PDF and a 20-slide .pptx, each with a fact on its last page or slide; the
   time from the upload's first byte until /v1/retrieve finds that fact. Several rounds, new bytes each time.
2. Chat while another tenant indexes: one tenant's chat (retrieval on, streamed, short answers) p50 and p95,
   idle, then while another tenant uploads 500 documents and they index, then idle again; the busy figures as
   a ratio to the mean of the two idle runs. Goal: <= 1.2.

Run: make bench-uploads
"""

import argparse
import asyncio
import io
import json
import os
import secrets
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx
from pptx import Presentation

from bench.serve_bench import Served, _batch, running_up
from bench.stats import summary_ms
from ragserve.engine.base_model import ensure_base_model
from ragserve.engine.cpu_placement import pin_process
from ragserve.service.config import BUNDLED_BASE
from tests.support.documents import make_corpus, write_pdf

ADMIN_KEY = secrets.token_urlsafe(24)
CHAT_BODY = {
    "messages": [{"role": "user", "content": "How long does the warehouse robot battery last?"}],
    "max_tokens": 16,
    "temperature": 0,
    "stream": True,
    "stream_options": {"include_usage": True},
}


def _tenant(url: str, name: str) -> str:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    response = httpx.post(f"{url}/admin/tenants", json={"name": name}, headers=admin, timeout=60)
    response.raise_for_status()
    return str(response.json()["key"]["key"])


def _pdf(work: Path, fact: str) -> bytes:
    path = work / f"{secrets.token_hex(4)}.pdf"
    pages = [[f"Page {n + 1} of the operations manual.", "Routine maintenance text " * 30] for n in range(9)]
    write_pdf(path, [*pages, ["Page 10.", fact]])
    return path.read_bytes()


def _deck(fact: str) -> bytes:
    deck = Presentation()
    for n in range(20):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = f"Slide {n + 1}: quarterly review"
        body = fact if n == 19 else "Routine review text " * 20
        slide.placeholders[1].text = body
    buffer = io.BytesIO()
    deck.save(buffer)
    return buffer.getvalue()


def upload_to_searchable(served: Served, work: Path, rounds: int) -> dict[str, Any]:
    key = _tenant(served.url, "uploads")
    headers = {"Authorization": f"Bearer {key}"}
    results: dict[str, Any] = {}
    for label, make, name in (("pdf_10_pages", lambda f: _pdf(work, f), "manual.pdf"),
                              ("pptx_20_slides", _deck, "review.pptx")):  # fmt: skip
        seconds = []
        for _ in range(rounds):
            code = secrets.token_hex(4)
            data = make(f"The override code for unit {code} is {code[::-1]}.")
            t0 = time.perf_counter()
            sent = httpx.post(
                f"{served.url}/v1/documents", files={"file": (name, data)}, headers=headers, timeout=120
            )
            sent.raise_for_status()
            while True:
                query = {"query": f"override code for unit {code}", "k": 3}
                found = httpx.post(f"{served.url}/v1/retrieve", json=query, headers=headers, timeout=60)
                hits = found.json()["hits"]
                if any(code[::-1] in h["text"] for h in hits):
                    break
                if time.perf_counter() - t0 > 300:
                    raise RuntimeError(f"{label} not searchable after 300 s")
                time.sleep(0.05)
            seconds.append(time.perf_counter() - t0)
        results[label] = {**summary_ms(seconds), "bytes": len(data), "rounds": rounds}
    return results


def _chat(url: str, requests: int) -> list[float]:
    done = asyncio.run(_batch(url, [(CHAT_BODY, "chat-key")] * requests, 1))
    return [total for _, total, _ in done]


def chat_while_indexing(served: Served, work: Path, documents: int, requests: int) -> dict[str, Any]:
    key = _tenant(served.url, "bulk")
    headers = {"Authorization": f"Bearer {key}"}
    corpus = make_corpus(work / "bulk", documents)
    _chat(served.url, 3)  # warm-up
    idle_before = _chat(served.url, requests)

    def send(path: Path) -> str:
        response = httpx.post(f"{served.url}/v1/documents", files={"file": (path.name, path.read_bytes())},
                              headers=headers, timeout=300)  # fmt: skip
        response.raise_for_status()
        return str(response.json()["id"])

    t0 = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        uploads = pool.map(send, corpus)
        busy: list[float] = []
        ids = list(uploads)
        pending = set(ids)
        while pending:
            busy += _chat(served.url, 1)
            listed = httpx.get(f"{served.url}/v1/documents", headers=headers, timeout=60).json()["data"]
            pending = {d["id"] for d in listed if d["status"] == "in_progress"}
    indexed_s = time.perf_counter() - t0
    idle_after = _chat(served.url, requests)
    idle = summary_ms(idle_before + idle_after)
    during = summary_ms(busy)
    return {
        "documents": documents,
        "indexed_in_s": round(indexed_s, 1),
        "idle": idle,
        "idle_before": summary_ms(idle_before),
        "idle_after": summary_ms(idle_after),
        "while_indexing": {**during, "requests": len(busy)},
        "p50_ratio": round(during["p50_ms"] / idle["p50_ms"], 3),
        "p95_ratio": round(during["p95_ms"] / idle["p95_ms"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--documents", type=int, default=500)
    parser.add_argument("--requests", type=int, default=20, help="chat requests per idle run")
    parser.add_argument("--out", type=Path, default=Path("bench/results/uploads.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ragserve-upload-bench-"))
    data_dir = work / "data"
    ensure_base_model(BUNDLED_BASE, data_dir / "models")
    make_corpus(work / "docs", 30)
    config = work / "ragserve.toml"
    config.write_text('[tenants.chat]\napi_key = "chat-key"\ndocs = "docs"\n')
    os.environ["RAGSERVE_ADMIN_KEY"] = ADMIN_KEY
    results: dict[str, Any] = {}
    with running_up(config, data_dir) as served:
        pin_process(set(served.api_cpus))
        results["cpus"] = {"machine": os.cpu_count(), "api_and_load_generator": served.api_cpus}
        results["upload_to_searchable"] = upload_to_searchable(served, work, args.rounds)
        results["chat_while_another_tenant_indexes"] = chat_while_indexing(
            served, work, args.documents, args.requests
        )
    print(json.dumps(results, indent=2))
    for label, row in results["upload_to_searchable"].items():
        print(f"upload to searchable, {label}: p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms")
    busy = results["chat_while_another_tenant_indexes"]
    print(
        f"chat while {busy['documents']} documents index ({busy['indexed_in_s']} s): "
        f"p50 x{busy['p50_ratio']}, p95 x{busy['p95_ratio']} of idle (goal <= 1.2)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
