"""A streamed answer: vLLM's stream opened (its first chunk awaited, so an early failure keeps its HTTP
status), then relayed as OpenAI's server-sent events, with the citations and the grounding in the last chunk
before `[DONE]`."""

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from ragserve.errors import RagserveError, UpstreamError
from ragserve.service.answer_check import check_answer, may_replace
from ragserve.service.citations import citations
from ragserve.service.dispatch import stream_on_replica
from ragserve.service.http_errors import domain_error_body, status_for
from ragserve.service.prompt import Prompt
from ragserve.service.schemas import ChatRequest
from ragserve.service.state import ServiceState
from ragserve.service.tool_calls import StreamedCalls

__all__ = ["open_stream", "sse_event", "sse_events", "text_chunks"]

ROUTE = "/v1/chat/completions"


async def open_stream(
    state: ServiceState, payload: dict[str, Any]
) -> tuple[dict[str, Any], AsyncGenerator[dict[str, Any], None]]:
    """Starts the vLLM stream and waits for its first chunk, so that a failure before it (a refused
    parameter, vLLM down) is answered with its own HTTP status, not a 200 carrying an error event.
    The caller owns the returned stream and closes it."""
    chunks = stream_on_replica(state, payload)
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        raise UpstreamError("vLLM ended the stream without a chunk") from None
    except BaseException:
        await chunks.aclose()
        raise
    return first, chunks


async def sse_events(
    state: ServiceState,
    tenant: str,
    stream: tuple[dict[str, Any], AsyncIterator[dict[str, Any]]],
    prompt: Prompt,
    body: ChatRequest,
    started: float,
) -> AsyncGenerator[str, None]:
    """vLLM's chunks as OpenAI sends them, each passed on as it comes, except one that finishes a choice: it
    may be the last one with a choice, which carries the citations, so it waits for the next chunk or the
    end. (Holding back every chunk by one would delay the first token by a token's time.) The usage-only
    chunk (empty `choices`) is sent only when `stream_options.include_usage` asks for it, since the common
    `chunk.choices[0]` loop fails on it."""
    first, rest = stream
    answer: list[str] = []
    usage: dict[str, Any] | None = None
    held: dict[str, Any] | None = None
    calls = StreamedCalls(body)
    # A policy that may replace the answer needs all of it before the first token goes out.
    whole = may_replace(state, tenant, body, prompt.blocks)
    kept: list[dict[str, Any]] = []
    if not whole:
        state.metrics.stage_seconds.labels("ttft").observe(time.perf_counter() - started)
    try:
        async for chunk in _chained(first, rest):
            usage = chunk.get("usage") or usage
            if not body.include_usage:
                chunk.pop("usage", None)
            if not chunk.get("choices"):
                continue
            calls.see(chunk)
            first_choice = [c for c in chunk["choices"] if c.get("index", 0) == 0]
            answer.extend(str(c.get("delta", {}).get("content") or "") for c in first_choice)
            if whole:
                kept.append(chunk)
                continue
            ready, held = _relayed(held, chunk)
            for event in ready:
                yield sse_event(event)
        checked = await asyncio.to_thread(check_answer, state, tenant, body, prompt, "".join(answer))
        if whole:
            state.metrics.stage_seconds.labels("ttft").observe(time.perf_counter() - started)
            if checked.replacement is not None:
                kept = text_chunks(_chunk_head(first), checked.replacement, _finish_reason(kept))
                answer = [checked.replacement]
            for chunk in kept[:-1]:
                yield sse_event(chunk)
            held = kept[-1] if kept else None
        held = held or _closing_chunk(first)
        held["citations"] = citations(state, body, checked.blocks, "".join(answer))
        held["grounding"] = checked.grounding
        yield sse_event(held)
        state.metrics.count_tokens(tenant, usage)
        if body.include_usage:
            yield sse_event({**_chunk_head(held), "choices": [], "usage": usage})
        yield "data: [DONE]\n\n"
    except RagserveError as exc:
        _, type_ = status_for(exc)
        state.metrics.errors.labels(ROUTE, tenant, type_).inc()
        yield sse_event(domain_error_body(exc)[1])
    finally:
        state.metrics.stage_seconds.labels("total").observe(time.perf_counter() - started)


def _chunk_head(chunk: dict[str, Any]) -> dict[str, Any]:
    return {k: chunk.get(k) for k in ("id", "object", "created", "model")}


def _relayed(
    held: dict[str, Any] | None, chunk: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The chunks to send now, and the one to hold: a chunk that finishes a choice waits for the next."""
    ready = [held] if held is not None else []
    if any(c.get("finish_reason") for c in chunk["choices"]):
        return ready, chunk
    return [*ready, chunk], None


def _finish_reason(chunks: list[dict[str, Any]]) -> str:
    reasons = [c.get("finish_reason") for chunk in chunks for c in chunk["choices"] if c.get("finish_reason")]
    return str(reasons[-1]) if reasons else "stop"


def text_chunks(head: dict[str, Any], text: str, reason: str = "stop") -> list[dict[str, Any]]:
    """A whole answer as a stream: its text in one chunk, then the finish reason (`head`: id, object, created,
    model). The stream of a replaced answer, and of a quoted one."""
    delta = {"role": "assistant", "content": text}
    return [
        {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
        {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]},
    ]


def _closing_chunk(first: dict[str, Any]) -> dict[str, Any]:
    """For the citations, when no chunk finished a choice: one with an empty delta."""
    return {**_chunk_head(first), "choices": [{"index": 0, "delta": {}, "finish_reason": None}]}


async def _chained(
    first: dict[str, Any], rest: AsyncIterator[dict[str, Any]]
) -> AsyncIterator[dict[str, Any]]:
    yield first
    async for chunk in rest:
        yield chunk


def sse_event(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data)}\n\n"
