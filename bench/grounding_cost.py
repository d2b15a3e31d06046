"""What the grounding check costs an answer, and what holding a stream for it costs the first token.

The demo's tenants (examples/ragserve.toml, indexed here into a scratch data dir) are each served twice by
one app over one real vLLM, three times: with `on_unsupported = "flag"` (nothing held), with "quote" (the
default: a stream is held until its answer is checked), and with `answer_mode = "quote"` (nothing generated).
Every demo question is then asked, one at a time:

- non-streamed under "flag": the request's total time, and the time of the check inside it (the route's own
  `check_answer`, timed in place for this run); the ratio of their medians is what the check adds;
- streamed under each of the three, in turn: the time to the first content token of each.

Run: make bench-grounding   (RAGSERVE_VLLM_URL=... uses a running vLLM instead of starting one)
"""

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx

from bench.stats import summary_ms
from ragserve.engine.base_model import ensure_base_model
from ragserve.launch.stack import index_tenants, serving_in_thread
from ragserve.service import answering
from ragserve.service.app import create_app
from ragserve.service.config import BUNDLED_BASE, load_config
from ragserve.settings import Settings
from tests.support.models import running_vllm

CONFIG = Path("examples/ragserve.toml")
VARIANTS = {
    "flag": {"on_unsupported": "flag"},
    "quote": {"on_unsupported": "quote"},
    "answer_mode_quote": {"answer_mode": "quote"},
}


def _timed(spent: list[float], work: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        result = work(*args, **kwargs)
        spent.append(time.perf_counter() - t0)
        return result

    return timed


@contextmanager
def _vllm(model_dir: Path, work: Path) -> Iterator[str]:
    url = os.environ.get("RAGSERVE_VLLM_URL")
    if url:
        yield url
        return
    with running_vllm(model_dir, BUNDLED_BASE, work / "vllm.log") as vllm:
        yield vllm.url


def _first_token_s(client: httpx.Client, url: str, key: str, question: str) -> float:
    body = {"messages": [{"role": "user", "content": question}], "stream": True}
    t0 = time.perf_counter()
    headers = {"Authorization": f"Bearer {key}"}
    with client.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers) as response:
        for line in response.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
                return time.perf_counter() - t0
    raise RuntimeError(f"no content token for {question!r}")


def main() -> None:
    base = load_config(CONFIG)
    questions = [
        (tenant, json.loads(line)["question"])
        for tenant in base.tenants
        for line in Path(f"examples/{tenant}/qa.jsonl").read_text().splitlines()
        if line.strip()
    ]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        raw = base.model_dump()
        raw["tenants"] = {
            f"{name}-{variant}": {**tenant, "api_key": f"{name}-{variant}-key", **changes}
            for name, tenant in raw["tenants"].items()
            for variant, changes in VARIANTS.items()
        }
        config = type(base).model_validate(raw)
        settings = Settings(data_dir=work / "data", metrics_port=0)
        model_dir = ensure_base_model(BUNDLED_BASE, work / "data" / "models")
        index_tenants(config, settings, print)
        checks: list[float] = []
        route = vars(answering)  # the name the route calls, rebound for this run
        route["check_answer"] = _timed(checks, route["check_answer"])
        totals: list[float] = []
        first: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
        with _vllm(model_dir, work) as vllm_url:
            app = create_app(config, settings, model_dir, vllm_url)
            with serving_in_thread(app, settings) as url, httpx.Client(timeout=600) as client:
                for tenant, question in questions:
                    body = {"messages": [{"role": "user", "content": question}]}
                    t0 = time.perf_counter()
                    headers = {"Authorization": f"Bearer {tenant}-flag-key"}
                    client.post(f"{url}/v1/chat/completions", json=body, headers=headers).raise_for_status()
                    totals.append(time.perf_counter() - t0)
                    for variant, times in first.items():
                        times.append(_first_token_s(client, url, f"{tenant}-{variant}-key", question))
    check, total = statistics.median(checks), statistics.median(totals)
    result = {
        "questions": len(questions),
        "check": summary_ms(checks),
        "answer_total_flag": summary_ms(totals),
        "check_share_of_total_p50": round(check / total, 5),
        "first_token": {variant: summary_ms(times) for variant, times in first.items()},
        **{
            f"first_token_{variant}_over_flag_p50": round(
                statistics.median(first[variant]) / statistics.median(first["flag"]), 2
            )
            for variant in VARIANTS
            if variant != "flag"
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
