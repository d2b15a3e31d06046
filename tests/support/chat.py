"""Calls to the chat API as a client makes them: a bearer key, a body, a stream of server-sent events."""

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import openai

__all__ = ["ask", "bearer", "openai_client", "post_chat", "sse_data", "sse_events", "stream_chat", "user"]

CHAT = "/v1/chat/completions"


def bearer(key: str | None) -> dict[str, str]:
    """The Authorization header for `key`; none for None."""
    return {"Authorization": f"Bearer {key}"} if key else {}


def user(question: str) -> list[dict[str, str]]:
    """A conversation of one user turn."""
    return [{"role": "user", "content": question}]


def post_chat(
    url: str, key: str | None, body: object = None, raw: bytes | None = None, timeout: float = 120
) -> httpx.Response:
    """POST /v1/chat/completions with `body` as JSON, or `raw` bytes sent as they are."""
    if raw is not None:
        headers = {**bearer(key), "Content-Type": "application/json"}
        return httpx.post(f"{url}{CHAT}", content=raw, headers=headers, timeout=timeout)
    return httpx.post(f"{url}{CHAT}", json=body, headers=bearer(key), timeout=timeout)


def ask(url: str, key: str, question: str, **fields: Any) -> dict[str, Any]:
    """One question, answered with 200; the response's JSON."""
    response = post_chat(url, key, {"messages": user(question), **fields})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def stream_chat(
    url: str, key: str, body: dict[str, Any], timeout: float = 120
) -> AbstractContextManager[httpx.Response]:
    """The streamed response to `body` (sent with `stream: true`), open for reading."""
    return httpx.stream(
        "POST", f"{url}{CHAT}", json={**body, "stream": True}, headers=bearer(key), timeout=timeout
    )


def sse_data(lines: Iterator[str]) -> Iterator[str]:
    """Each event's data, `[DONE]` included."""
    for line in lines:
        if line.startswith("data:"):
            yield line[5:].strip()


def sse_events(response: httpx.Response) -> list[dict[str, Any]]:
    """The events of a whole 200 stream, parsed; it must end with `[DONE]`."""
    assert response.status_code == 200, response.read()
    data = list(sse_data(response.iter_lines()))
    assert data and data[-1] == "[DONE]", data
    return [json.loads(item) for item in data[:-1]]


def openai_client(url: str, key: str) -> openai.OpenAI:
    """The unchanged openai SDK on the service, with no retries to hide a failure."""
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=120)
