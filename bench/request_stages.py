"""Where one streamed chat request's time to first token goes, stage by stage, through the real service.

The app runs in this process on a real vLLM CPU server started here (retrieval off, as in `make bench-serve`'s
overhead test, so what is timed is the service itself). Each stage's start and end are marked on the request's
own clock, from the client's send to the client's first content token; the medians of `--requests` requests
(after one warm-up) are printed in order:

    received -> prompt built -> payload built -> sent to vLLM -> vLLM's first chunk -> client's first token

The marks wrap the route's own steps (`prompt_for`, `vllm_payload`, `VllmClient.stream_chat`) for this run
only. `make bench-serve` measures the same path side by side against direct calls; this says where a
difference comes from.

Run: make bench-stages
"""

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx

from ragserve.engine.base_model import ensure_base_model
from ragserve.engine.vllm_client import VllmClient
from ragserve.launch.stack import serving_in_thread
from ragserve.service import answering
from ragserve.service.app import create_app
from ragserve.service.config import BUNDLED_BASE, ModelConfig, ServeConfig, TenantConfig
from ragserve.settings import Settings
from tests.support.models import running_vllm

KEY = "stages-key"
BODY = {
    "model": "default",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Tell me about warehouse robots and their batteries."},
    ],
    "max_tokens": 32,
    "temperature": 0,
    "ignore_eos": True,
    "stream": True,
    "rag": False,
}


class Clock:
    """Marks on the current request's clock, in ms since the client sent it."""

    def __init__(self) -> None:
        self.start = 0.0
        self.marks: dict[str, list[float]] = {}

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, []).append((time.perf_counter() - self.start) * 1000)


def _timed_async(
    clock: Clock, name: str, work: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    async def timed(*args: Any, **kwargs: Any) -> Any:
        clock.mark(f"{name}: start")
        result = await work(*args, **kwargs)
        clock.mark(f"{name}: done")
        return result

    return timed


def _timed(clock: Clock, name: str, work: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        clock.mark(f"{name}: start")
        result = work(*args, **kwargs)
        clock.mark(f"{name}: done")
        return result

    return timed


def _instrument(clock: Clock) -> None:
    route = vars(answering)  # the names the route calls, rebound for this run
    route["prompt_for"] = _timed_async(clock, "prompt", route["prompt_for"])
    route["vllm_payload"] = _timed(clock, "payload", route["vllm_payload"])
    stream_chat = VllmClient.stream_chat

    async def marked(self: VllmClient, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        clock.mark("vLLM: request sent")
        first = True
        async for chunk in stream_chat(self, payload):
            if first:
                clock.mark("vLLM: first chunk")
                first = False
            yield chunk

    VllmClient.stream_chat = marked  # type: ignore[method-assign]


def _one(client: httpx.Client, url: str, clock: Clock) -> None:
    clock.start = time.perf_counter()
    seen = False
    headers = {"Authorization": f"Bearer {KEY}"}
    with client.stream("POST", f"{url}/v1/chat/completions", json=BODY, headers=headers) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if seen or not line.startswith("data:") or line.endswith("[DONE]"):
                continue
            chunk = json.loads(line[5:])
            if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                clock.mark("client: first token")
                seen = True


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ragserve-stages-"))
    model_dir = ensure_base_model(BUNDLED_BASE, work / "data" / "models")
    (work / "docs").mkdir()
    config = ServeConfig(
        model=ModelConfig(max_tokens=32),
        tenants={"base": TenantConfig(api_key=KEY, docs=work / "docs", system_prompt="")},
    )
    settings = Settings(data_dir=work / "data", metrics_port=0)
    clock = Clock()
    _instrument(clock)
    with running_vllm(model_dir, BUNDLED_BASE, work / "vllm.log") as vllm:
        app = create_app(config, settings, model_dir, vllm.url)
        with serving_in_thread(app, settings) as url, httpx.Client(timeout=120) as client:
            _one(client, url, clock)  # warm-up
            clock.marks.clear()
            for _ in range(args.requests):
                _one(client, url, clock)
    medians = sorted((statistics.median(times), name) for name, times in clock.marks.items())
    print(f"median of {args.requests} streamed requests, ms since the client sent each:")
    for at, name in medians:
        print(f"{at:9.1f}  {name}")


if __name__ == "__main__":
    main()
