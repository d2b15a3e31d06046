"""The legacy Completions shape of an answer: Chat Completions' JSON and stream chunks, converted.

`choices[i].message.content` becomes `choices[i].text`, a chunk's `delta.content` its `text`, and chat's
token log-probabilities the legacy `tokens`, `token_logprobs`, `top_logprobs` and `text_offset`. The id,
model, usage, finish reasons and ragserve's `citations` and `grounding` are kept as they are; an error is
passed on unchanged.
"""

import json
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from fastapi.responses import JSONResponse, Response, StreamingResponse

__all__ = ["as_text_completion"]

_OBJECT = "text_completion"
_CHAT_ONLY = frozenset({"choices", "object", "system_fingerprint"})


def as_text_completion(response: Response) -> Response:
    """The chat answer's response in the legacy shape; a stream stays a stream that owns what it held."""
    if isinstance(response, StreamingResponse):
        response.body_iterator = _events(response.body_iterator)
        return response
    body = json.loads(bytes(response.body))
    if "choices" not in body:  # an error
        return response
    return JSONResponse(_completion(body), status_code=response.status_code)


def _completion(chat: dict[str, Any]) -> dict[str, Any]:
    choices = [
        _choice(c, str((c.get("message") or {}).get("content") or "")) for c in chat.get("choices", [])
    ]
    return {**_head(chat), "choices": choices}


def _chunk(chat: dict[str, Any]) -> dict[str, Any] | None:
    """A stream chunk; None for one that carries nothing a legacy client reads (the role alone)."""
    choices = [_choice(c, str((c.get("delta") or {}).get("content") or "")) for c in chat.get("choices", [])]
    extras = {"usage", "citations", "grounding"} & chat.keys()
    if chat.get("choices") and not extras and not any(c["text"] or c["finish_reason"] for c in choices):
        return None
    return {**_head(chat), "choices": choices}


def _head(chat: dict[str, Any]) -> dict[str, Any]:
    head = {key: value for key, value in chat.items() if key not in _CHAT_ONLY}
    head["id"] = str(chat.get("id", "")).replace("chatcmpl-", "cmpl-", 1)
    return {"object": _OBJECT, **head}


def _choice(chat: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "index": chat.get("index", 0),
        "text": text,
        "logprobs": _logprobs(chat.get("logprobs")),
        "finish_reason": chat.get("finish_reason"),
    }


def _logprobs(chat: dict[str, Any] | None) -> dict[str, Any] | None:
    tokens = (chat or {}).get("content")
    if not tokens:
        return None
    offsets, at = [], 0
    for token in tokens:
        offsets.append(at)
        at += len(token["token"])
    return {
        "tokens": [t["token"] for t in tokens],
        "token_logprobs": [t["logprob"] for t in tokens],
        "top_logprobs": [_top(t) for t in tokens],
        "text_offset": offsets,
    }


def _top(token: dict[str, Any]) -> dict[str, float]:
    return {top["token"]: top["logprob"] for top in token.get("top_logprobs") or []}


async def _events(chat_events: AsyncIterable[str | bytes | memoryview]) -> AsyncIterator[str]:
    async for event in chat_events:
        text = event if isinstance(event, str) else bytes(event).decode()
        data = text.removeprefix("data: ").strip()
        if data == "[DONE]" or not data.startswith("{"):
            yield text
            continue
        chunk = json.loads(data)
        if "error" in chunk:
            yield text
            continue
        converted = _chunk(chunk)
        if converted is not None:
            yield f"data: {json.dumps(converted)}\n\n"
