"""Sampling defaults from the config reach vLLM, and a client's own values win: seen on the way to vLLM."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from ragserve.engine.vllm_process import VllmProcess
from ragserve.ingest.embedding import DenseEmbedder
from ragserve.service.config import ModelConfig, ServeConfig, TenantConfig
from ragserve.settings import Settings
from tests.service.conftest import tenant_docs
from tests.support.chat import ask
from tests.support.servers import running_app, serving

DEFAULTS = {"temperature": 0.3, "top_p": 0.8, "repetition_penalty": 1.05}


def recording_proxy(target: str, seen: list[dict[str, Any]]) -> FastAPI:
    """Passes every call through to the real vLLM, keeping the chat request bodies it carried."""
    proxy = FastAPI()

    @proxy.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @proxy.api_route("/{path:path}", methods=["GET", "POST"])
    async def forward(path: str, request: Request) -> Response:
        body = await request.body()
        if path == "v1/chat/completions":
            seen.append(json.loads(body))
        async with httpx.AsyncClient(timeout=120) as client:
            answer = await client.request(
                request.method, f"{target}/{path}", content=body, headers={"content-type": "application/json"}
            )
        return Response(answer.content, answer.status_code, media_type=answer.headers.get("content-type"))

    return proxy


@pytest.fixture(scope="module")
def recorded(
    tmp_path_factory: pytest.TempPathFactory, embedder: DenseEmbedder, base_model_dir: Path, vllm: VllmProcess
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    root = tmp_path_factory.mktemp("sampling")
    docs = tenant_docs(root / "docs")
    config = ServeConfig(
        model=ModelConfig(max_tokens=16, **DEFAULTS),  # type: ignore[arg-type]
        tenants={"globex": TenantConfig(api_key="globex-key", docs=docs["globex"])},
    )
    seen: list[dict[str, Any]] = []
    with running_app(recording_proxy(vllm.url, seen)) as proxy_url:
        settings = Settings(data_dir=root / "data")
        with serving(config, settings, base_model_dir, proxy_url, embedder) as (url, _):
            yield url, seen


def _ask(url: str, **sampling: object) -> dict[str, Any]:
    return ask(url, "globex-key", "What is the refund policy?", rag=False, **sampling)


def test_the_configured_sampling_defaults_reach_vllm(recorded: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = recorded
    answer = _ask(url)
    assert answer["choices"][0]["message"]["content"]  # the real vLLM answered
    sent = seen[-1]
    assert {name: sent.get(name) for name in DEFAULTS} == DEFAULTS
    assert sent["max_tokens"] == 16


def test_a_clients_own_values_win_over_the_defaults(recorded: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = recorded
    _ask(url, temperature=0.9, repetition_penalty=1.2, max_tokens=8)
    sent = seen[-1]
    assert sent["temperature"] == 0.9 and sent["repetition_penalty"] == 1.2 and sent["max_tokens"] == 8
    assert sent["top_p"] == 0.8  # not sent by the client, so the default
