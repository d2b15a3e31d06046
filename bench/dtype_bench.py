"""vLLM's dtype on this CPU: float32 against bfloat16, the same requests against each, in one run.

Each dtype gets its own vLLM server (one at a time, so they do not share the cores), the bundled model, and
the same streamed requests: decode throughput at concurrency 8 and latency at concurrency 1. The servers are
started twice each, alternating, and the figures pooled, so drift hits both alike.

Run: make bench-dtype
"""

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.serve_bench import _batch, _body
from bench.stats import summary_ms
from ragserve.engine.base_model import ensure_base_model
from ragserve.service.config import BUNDLED_BASE
from tests.support.models import running_vllm

DTYPES = ("float32", "bfloat16")


def measure(url: str, tokens: int, requests: int) -> dict[str, Any]:
    body = _body(BUNDLED_BASE, tokens)
    asyncio.run(_batch(url, [(body, "none")] * 2, 2))  # warm-up
    t0 = time.perf_counter()
    done = asyncio.run(_batch(url, [(body, "none")] * requests, 8))
    throughput = sum(r[2] for r in done) / (time.perf_counter() - t0)
    single = asyncio.run(_batch(url, [(body, "none")] * 4, 1))
    return {"tokens_per_s": throughput, "totals": [r[1] for r in single], "ttfts": [r[0] for r in single]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/results/dtype.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ragserve-dtype-bench-"))
    model_dir = ensure_base_model(BUNDLED_BASE, work / "models")
    pooled: dict[str, dict[str, list[float]]] = {
        d: {"tokens_per_s": [], "totals": [], "ttfts": []} for d in DTYPES
    }
    for round_ in range(args.rounds):
        for dtype in DTYPES if round_ % 2 == 0 else tuple(reversed(DTYPES)):
            with running_vllm(model_dir, BUNDLED_BASE, work / f"vllm-{dtype}.log", dtype=dtype) as vllm:
                result = measure(vllm.url, args.tokens, args.requests)
            pooled[dtype]["tokens_per_s"].append(result["tokens_per_s"])
            pooled[dtype]["totals"] += result["totals"]
            pooled[dtype]["ttfts"] += result["ttfts"]
    results: dict[str, Any] = {}
    for dtype, data in pooled.items():
        results[dtype] = {
            "tokens_per_s_c8": round(sum(data["tokens_per_s"]) / len(data["tokens_per_s"]), 2),
            "total_c1": summary_ms(data["totals"]),
            "ttft_c1": summary_ms(data["ttfts"]),
        }
    fp32, bf16 = results["float32"], results["bfloat16"]
    results["bfloat16_over_float32"] = {
        "throughput_c8": round(bf16["tokens_per_s_c8"] / fp32["tokens_per_s_c8"], 3),
        "total_p50_c1": round(bf16["total_c1"]["p50_ms"] / fp32["total_c1"]["p50_ms"], 3),
    }
    print(json.dumps(results, indent=2))
    ratio = results["bfloat16_over_float32"]
    print(f"bfloat16/float32: throughput at c=8 {ratio['throughput_c8']}, total latency p50 at c=1 "
          f"{ratio['total_p50_c1']} (throughput above 1 and latency below 1 favour bfloat16)")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
