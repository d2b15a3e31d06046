"""VllmClient sends vLLM's API key on every call, against a small stand-in server that checks it as vLLM does
(/v1 behind the key, /health open)."""

import asyncio
from collections.abc import Iterator
from typing import Annotated

import pytest
from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse, Response

from ragserve.engine.vllm_client import VllmClient
from ragserve.errors import RagserveError
from tests.support.servers import running_app

KEY = "vllm-key-for-this-start"


def _keyed_stand_in(seen: list[str | None]) -> FastAPI:
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200)

    @app.get("/v1/models")
    async def models(authorization: Annotated[str | None, Header()] = None) -> Response:
        seen.append(authorization)
        if authorization != f"Bearer {KEY}":
            return JSONResponse({"error": "Unauthorized"}, 401)
        return JSONResponse({"object": "list", "data": [{"id": "base"}]})

    return app


@pytest.fixture(scope="module")
def keyed() -> Iterator[tuple[str, list[str | None]]]:
    seen: list[str | None] = []
    with running_app(_keyed_stand_in(seen)) as url:
        yield url, seen


def _models(url: str, api_key: str | None) -> tuple[bool, set[str] | Exception]:
    async def call() -> tuple[bool, set[str] | Exception]:
        client = VllmClient(url, api_key=api_key)
        try:
            healthy = await client.healthy()
            try:
                return healthy, await client.served_models()
            except RagserveError as exc:
                return healthy, exc
        finally:
            await client.aclose()

    return asyncio.run(call())


def test_the_client_sends_the_key_as_a_bearer_token(keyed: tuple[str, list[str | None]]) -> None:
    url, seen = keyed
    seen.clear()
    assert _models(url, KEY) == (True, {"base"})
    assert seen == [f"Bearer {KEY}"]


def test_without_the_key_vllm_refuses_but_health_still_answers(keyed: tuple[str, list[str | None]]) -> None:
    url, seen = keyed
    seen.clear()
    healthy, result = _models(url, None)
    assert healthy  # readiness does not need the key
    assert isinstance(result, RagserveError)  # a domain error (vllm_client.py says which), not a traceback
    assert seen == [None]
