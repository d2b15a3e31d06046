"""Asking the questions: over HTTP against a running service, exactly as a client would.

Each question is one non-streamed `POST /v1/chat/completions` with the set-up's request fields; the answer,
its citations (with the text of each block) and its usage come back in the response. Retrieval-only runs ask
`POST /v1/retrieve` instead, and generate nothing.
"""

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from ragserve.errors import AuthError, UpstreamError
from ragserve.evaluation.qa import QAItem
from ragserve.evaluation.scoring import QuestionResult, RetrievalResult, score_answer
from ragserve.evaluation.setups import Setup

__all__ = ["RETRIEVAL_K", "ask_questions", "rank_of", "rank_sources"]

RETRIEVAL_K = 5


async def ask_questions(
    url: str,
    key: str,
    items: Sequence[QAItem],
    setup: Setup,
    on_done: Callable[[], None],
    concurrency: int = 4,
    timeout_s: float = 600.0,
) -> list[QuestionResult]:
    gate = asyncio.Semaphore(concurrency)
    async with _client(url, key, timeout_s) as client:

        async def one(item: QAItem) -> QuestionResult:
            async with gate:
                body = {**setup.request, "messages": [{"role": "user", "content": item.question}]}
                t0 = time.perf_counter()
                response = await _post(client, "/v1/chat/completions", body)
                elapsed_ms = (time.perf_counter() - t0) * 1000
            on_done()
            if response.status_code != 200:
                result = score_answer(item, "", [], elapsed_ms, {})
                result.error = f"HTTP {response.status_code}: {_message(response)}"
                return result
            completion = response.json()
            answer = str(completion["choices"][0]["message"].get("content") or "")
            citations = completion.get("citations") or []
            usage = completion.get("usage") or {}
            return score_answer(item, answer, citations, elapsed_ms, usage, completion.get("grounding"))

        return list(await asyncio.gather(*(one(i) for i in items)))


async def rank_sources(
    url: str, key: str, items: Sequence[QAItem], on_done: Callable[[], None], timeout_s: float = 120.0
) -> list[RetrievalResult]:
    """The rank of the first hit from an expected source, per question, through the service's retrieval."""
    results = []
    async with _client(url, key, timeout_s) as client:
        for item in items:
            response = await _post(client, "/v1/retrieve", {"query": item.question, "k": RETRIEVAL_K})
            if response.status_code != 200:
                raise UpstreamError(f"retrieval for {item.id} failed: HTTP {response.status_code}: "
                                    f"{_message(response)}")  # fmt: skip
            sources = [str(h["source"]) for h in response.json()["hits"]]
            results.append(rank_of(item, sources))
            on_done()
    return results


def rank_of(item: QAItem, sources: list[str]) -> RetrievalResult:
    rank = next((i for i, s in enumerate(sources, start=1) if s in item.sources), None)
    return RetrievalResult(item.id, item.question, rank, list(item.sources))


def _client(url: str, key: str, timeout_s: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url.rstrip("/"),
        headers={"Authorization": f"Bearer {key}"},
        timeout=httpx.Timeout(timeout_s, connect=10.0),
    )


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    try:
        response = await client.post(path, json=body)
    except httpx.HTTPError as exc:
        raise UpstreamError(f"the service at {client.base_url} failed: {type(exc).__name__}: {exc}") from exc
    if response.status_code == 401:
        raise AuthError(f"the service at {client.base_url} refused the key: {_message(response)}")
    return response


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:300]
