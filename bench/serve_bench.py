"""Serving benchmark, measured side by side in one run against one real vLLM server.

`ragserve up` starts vLLM itself, as in `make demo`; the direct calls go to that same vLLM. The load generator
runs on the CPUs the API runs on (off vLLM's compute cores): it takes nothing from the model and weighs on
both set-ups alike.

1. Service overhead: the service (retrieval off, so the final prompt is known) against calling vLLM directly
   with that same final prompt, at concurrency 1 and 8; time to first token and total, p50 and p95.
   Target: service/direct <= 1.05. Retrieval is measured on its own.
2. Retrieval stage (POST /v1/retrieve), p50 and p95.
3. Throughput (completion tokens/s) with requests spread over 4 LoRA adapters against base-only requests.
4. The Responses API against Chat Completions for the same question (retrieval on, the same instructions,
   greedy, so the same prompt and answer): time to first token and total, p50 and p95, alternating rounds at
   concurrency 1. Target: responses/chat <= 1.05.

Run: make bench-serve
"""

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx

from bench.stats import summary_ms
from ragserve.engine.base_model import ensure_base_model
from ragserve.engine.cpu_placement import pin_process
from ragserve.engine.vllm_process import free_port, wait_for_ok
from ragserve.service.config import BUNDLED_BASE
from tests.support.documents import make_corpus
from tests.support.models import make_lora

ADAPTERS = [f"style{i}" for i in range(4)]
SYSTEM = "You are a helpful assistant."
QUESTION = "Tell me about warehouse robots and their batteries."


async def _timed(
    client: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    key: str,
    api: str = "chat",
) -> tuple[float, float, int]:
    """Streams one request to Chat Completions or the Responses API; returns (time to first text, total,
    completion tokens)."""
    t0 = time.perf_counter()
    ttft, tokens = 0.0, 0
    headers = {"Authorization": f"Bearer {key}"}
    path = "/v1/chat/completions" if api == "chat" else "/v1/responses"
    async with client.stream("POST", f"{url}{path}", json=body, headers=headers) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data:") or line.endswith("[DONE]"):
                continue
            data = json.loads(line[5:])
            if not ttft and _is_text(data):
                ttft = time.perf_counter() - t0
            tokens = _tokens(data) or tokens
    return ttft, time.perf_counter() - t0, tokens


def _is_text(data: dict[str, Any]) -> bool:
    """A chat chunk with content, or the Responses API's text delta."""
    if data.get("type") == "response.output_text.delta":
        return True
    return bool(data.get("choices") and data["choices"][0]["delta"].get("content"))


def _tokens(data: dict[str, Any]) -> int:
    """The completion tokens a chat usage chunk or a final response reports; 0 for any other."""
    if data.get("usage"):
        return int(data["usage"]["completion_tokens"])
    if data.get("type") in ("response.completed", "response.incomplete"):
        return int(data["response"]["usage"]["output_tokens"])
    return 0


def responses_vs_chat(url: str, tokens: int, rounds: int, key: str) -> dict[str, Any]:
    """The same question through both APIs, one request at a time, alternating which goes first."""
    chat = {**_body("default", tokens), "ignore_eos": False}
    responses = {
        "model": "default",
        "instructions": SYSTEM,
        "input": QUESTION,
        "max_output_tokens": tokens,
        "temperature": 0,
        "stream": True,
    }

    async def run(api: str) -> tuple[float, float, int]:
        async with httpx.AsyncClient(timeout=600) as client:
            return await _timed(client, url, chat if api == "chat" else responses, key, api)

    runs: dict[str, list[tuple[float, float, int]]] = {"chat": [], "responses": []}
    for api in ("chat", "responses"):  # warm-up
        asyncio.run(run(api))
    for i in range(rounds):
        for api in ("chat", "responses") if i % 2 == 0 else ("responses", "chat"):
            runs[api].append(asyncio.run(run(api)))
    row: dict[str, Any] = {"rounds": rounds}
    for api, measured in runs.items():
        row[f"{api}_ttft"] = summary_ms([r[0] for r in measured])
        row[f"{api}_total"] = summary_ms([r[1] for r in measured])
        row[f"{api}_tokens"] = sorted({r[2] for r in measured})
    for metric in ("ttft", "total"):
        for q in ("p50_ms", "p95_ms"):
            row[f"{metric}_{q[:3]}_ratio"] = round(
                row[f"responses_{metric}"][q] / row[f"chat_{metric}"][q], 3
            )
    return row


async def _batch(
    url: str, bodies: list[tuple[dict[str, Any], str]], concurrency: int
) -> list[tuple[float, float, int]]:
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=600) as client:

        async def run(body: dict[str, Any], key: str) -> tuple[float, float, int]:
            async with sem:
                return await _timed(client, url, body, key)

        return await asyncio.gather(*(run(b, k) for b, k in bodies))


def _body(model: str, max_tokens: int, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
        **extra,
    }


def overhead(url: str, vllm_url: str, vllm_key: str, tokens: int, rounds: int) -> dict[str, Any]:
    """Service against direct vLLM with the same final prompt: with retrieval off, the client's messages.

    At concurrency 8 a round is one burst of 8, whose time to first token vLLM's batching sets for all 8
    together; many alternating rounds, not many requests per round, are what average out its noise."""
    direct_body = _body(BUNDLED_BASE, tokens)
    service_body = _body("default", tokens, rag=False)
    asyncio.run(_batch(url, [(service_body, "base-key")] * 2, 1))  # warm-up
    results: dict[str, Any] = {"rounds": rounds}
    for concurrency, per_round in ((1, 2), (8, 8)):
        runs: dict[str, list[tuple[float, float, int]]] = {"service": [], "direct": []}
        setups = [("service", url, service_body, "base-key"), ("direct", vllm_url, direct_body, vllm_key)]
        for i in range(rounds):  # alternate, each going first in turn, so drift hits both alike
            for name, base, body, key in setups if i % 2 == 0 else setups[::-1]:
                runs[name] += asyncio.run(_batch(base, [(body, key)] * per_round, concurrency))
        via, direct = runs["service"], runs["direct"]
        row: dict[str, Any] = {
            "service_ttft": summary_ms([r[0] for r in via]),
            "direct_ttft": summary_ms([r[0] for r in direct]),
            "service_total": summary_ms([r[1] for r in via]),
            "direct_total": summary_ms([r[1] for r in direct]),
        }
        for metric in ("ttft", "total"):
            for q in ("p50_ms", "p95_ms"):
                ratio = row[f"service_{metric}"][q] / row[f"direct_{metric}"][q]
                row[f"{metric}_{q[:3]}_ratio"] = round(ratio, 3)
        results[f"concurrency_{concurrency}"] = row
    return results


def retrieval(url: str, n: int = 60) -> dict[str, float]:
    latencies = []
    with httpx.Client(timeout=60) as client:
        for i in range(n):
            t0 = time.perf_counter()
            query = {"query": f"reference code for document {i}", "k": 4}
            headers = {"Authorization": "Bearer base-key"}
            client.post(f"{url}/v1/retrieve", json=query, headers=headers).raise_for_status()
            latencies.append(time.perf_counter() - t0)
    return summary_ms(latencies)


def throughput(url: str, tokens: int, requests: int) -> dict[str, float]:
    """Completion tokens/s at concurrency 8: base-only, spread over 4 adapters, base-only again."""
    body = _body("default", tokens, rag=False)
    spread = [(body, f"{ADAPTERS[i % 4]}-key") for i in range(requests)]
    base_only = [(body, "base-key")] * requests
    result: dict[str, float] = {}
    for label, bodies in (
        ("base_only", base_only),
        ("four_adapters", spread),
        ("base_only_again", base_only),
    ):
        t0 = time.perf_counter()
        done = asyncio.run(_batch(url, bodies, 8))
        result[label] = round(sum(r[2] for r in done) / (time.perf_counter() - t0), 2)
    base = (result["base_only"] + result["base_only_again"]) / 2
    result["adapters_over_base"] = round(result["four_adapters"] / base, 3)
    return result


def _config(work: Path, tokens: int) -> Path:
    lines = [f"[model]\nmax_tokens = {tokens}\n"]
    for name in ["base", *ADAPTERS]:
        lines.append(f'[tenants.{name}]\napi_key = "{name}-key"\ndocs = "docs"\nsystem_prompt = ""\n')
        lines.append(f'adapter = "{name}@v1"\n' if name != "base" else "")
    flagged = 'api_key = "flagged-key"\ndocs = "docs"\nsystem_prompt = ""\non_unsupported = "flag"\n'
    lines.append(f"[tenants.flagged]\n{flagged}")
    path = work / "ragserve.toml"
    path.write_text("\n".join(lines))
    return path


@dataclass
class Served:
    url: str  # the API
    vllm_url: str  # the vLLM it started
    vllm_key: str  # and the key that vLLM wants
    api_cpus: list[int]


@contextmanager
def running_up(config: Path, data_dir: Path) -> Iterator[Served]:
    """`ragserve up` in its own process, starting its own vLLM, as in production; stopped with SIGTERM."""
    port, vllm_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "ragserve.cli.main", "up", "--config", str(config), "--port", str(port),
           "--data-dir", str(data_dir)]  # fmt: skip
    vllm_key = secrets.token_urlsafe(32)
    env = {**os.environ, "RAGSERVE_VLLM_API_KEY": vllm_key, "RAGSERVE_VLLM_PORT": str(vllm_port)}
    log_path = data_dir.parent / "up.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_for_ok(f"{url}/readyz", proc, 600):
            raise RuntimeError(f"ragserve up did not become ready; see {log_path}")
        yield Served(url, f"http://127.0.0.1:{vllm_port}", vllm_key, sorted(os.sched_getaffinity(proc.pid)))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=24, help="alternating rounds of the overhead test")
    parser.add_argument("--requests", type=int, default=16, help="requests per set-up of the throughput test")
    parser.add_argument("--out", type=Path, default=Path("bench/results/serve.json"))
    parser.add_argument("--only", choices=["responses"], help="measure only the Responses API against chat")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ragserve-serve-bench-"))
    data_dir = work / "data"
    model_dir = ensure_base_model(BUNDLED_BASE, data_dir / "models")
    for i, name in enumerate(ADAPTERS):  # into the registry in the data dir, as `name@v1`
        make_lora(model_dir, data_dir / "adapters" / name / "v1", seed=i)
    make_corpus(work / "docs", 60)
    config = _config(work, args.tokens)
    results: dict[str, Any] = {"tokens_per_request": args.tokens}
    with running_up(config, data_dir) as served:
        pin_process(set(served.api_cpus))
        results["cpus"] = {"machine": os.cpu_count(), "api_and_load_generator": served.api_cpus}
        if args.only is None:
            results |= overhead(served.url, served.vllm_url, served.vllm_key, args.tokens, args.rounds)
            results["retrieve"] = retrieval(served.url)
            results["throughput_tokens_per_s"] = throughput(served.url, args.tokens, args.requests)
        # The base tenant's default policy holds a stream until its answer is checked, so its first token
        # comes with the last; the "flagged" tenant streams each token as vLLM makes it.
        results["responses_vs_chat"] = {
            "held": responses_vs_chat(served.url, args.tokens, args.rounds, "base-key"),
            "streamed": responses_vs_chat(served.url, args.tokens, args.rounds, "flagged-key"),
        }
    print(json.dumps(results, indent=2))
    _report(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


def _report(results: dict[str, Any]) -> None:
    for policy, row in results["responses_vs_chat"].items():
        print(
            f"responses/chat, {policy}: TTFT p50 {row['ttft_p50_ratio']}, p95 {row['ttft_p95_ratio']}; "
            f"total p50 {row['total_p50_ratio']}, p95 {row['total_p95_ratio']} (target <= 1.05)"
        )
    if "retrieve" not in results:
        return
    for c in (1, 8):
        row = results[f"concurrency_{c}"]
        ttft = f"TTFT p50 {row['ttft_p50_ratio']}, p95 {row['ttft_p95_ratio']}"
        total = f"total p50 {row['total_p50_ratio']}, p95 {row['total_p95_ratio']}"
        print(f"concurrency {c}: service/direct {ttft}; {total} (target <= 1.05)")
    print(f"retrieve p50 {results['retrieve']['p50_ms']} ms, p95 {results['retrieve']['p95_ms']} ms")
    print(f"4 adapters / base-only throughput: {results['throughput_tokens_per_s']['adapters_over_base']}")


if __name__ == "__main__":
    main()
