"""Generation for one chat request: the vLLM request (the prompt, the model's sampling defaults, the client's
own values), answered whole or streamed as server-sent events (on a replica: dispatch.py), and the citations
of the answer."""

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from contextlib import AsyncExitStack
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ragserve.errors import (
    InvalidRequestError,
    PromptTooLongError,
    RagserveError,
    UpstreamError,
)
from ragserve.ingest.search import Hit
from ragserve.service.answer_check import check_answer, may_replace
from ragserve.service.attribution import attributed_block
from ragserve.service.dispatch import complete_on_replica, stream_on_replica
from ragserve.service.http_errors import domain_error_body, status_for
from ragserve.service.prompt import Prompt, cited_blocks
from ragserve.service.schemas import ChatRequest, Citation
from ragserve.service.state import ServiceState
from ragserve.service.tool_calls import StreamedCalls

__all__ = [
    "OwningStream",
    "citations",
    "complete",
    "count_tokens",
    "max_tokens_for",
    "open_stream",
    "sse_event",
    "sse_events",
    "text_chunks",
    "vllm_payload",
]

ROUTE = "/v1/chat/completions"
# What the client may set and vLLM takes as it is: OpenAI's fields, then vLLM's sampling extensions.
_PASSED_ON = frozenset({
    "n", "temperature", "top_p", "presence_penalty", "frequency_penalty", "stop", "seed", "logprobs",
    "top_logprobs", "logit_bias", "response_format", "tools", "tool_choice", "parallel_tool_calls",
    "top_k", "min_p", "min_tokens", "repetition_penalty", "ignore_eos",
})  # fmt: skip
_T = TypeVar("_T")


def max_tokens_for(body: ChatRequest, state: ServiceState, tenant: str) -> int:
    """What the client asked for, else the model's default, within the tenant's cap and the context."""
    cap = state.config.tenants[tenant].max_tokens
    asked = body.max_completion_tokens or body.max_tokens
    param = "max_completion_tokens" if body.max_completion_tokens else "max_tokens"
    if asked is not None and cap is not None and asked > cap:
        raise InvalidRequestError(f"{param} is {asked}, over this key's limit of {cap}", param=param)
    tokens = asked or min(state.config.model.max_tokens, cap or state.config.model.max_tokens)
    context = state.config.model.max_model_len
    if tokens >= context:
        raise PromptTooLongError(
            f"{param} is {tokens}, which leaves no room for the prompt in the model's context of {context} "
            "tokens",
            param=param,
        )
    return tokens


def cache_salt(tenant: str) -> str:
    """Each tenant's requests share vLLM's prefix cache only with each other, so how fast a prompt starts
    tells no tenant what another one asked. The client never sets it: it comes from the key's tenant."""
    return hashlib.sha256(f"ragserve-tenant:{tenant}".encode()).hexdigest()[:32]


def vllm_payload(
    body: ChatRequest, served: str, prompt: Prompt, state: ServiceState, tenant: str
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "model": served,
        "messages": [{"role": m.role, "content": m.content, **m.extra} for m in prompt.messages],
        "max_tokens": prompt.max_tokens,
        "cache_salt": cache_salt(tenant),
    }
    # The model's sampling defaults, then what the client sent: the client's own values always win.
    payload.update(state.config.model.sampling())
    sent = body.model_dump(include=set(_PASSED_ON), exclude_none=True)
    payload.update(sent)
    if body.stream:
        # Usage always, for the metrics; the client sees it only if it asked (sse_events).
        usage = body.stream_options.model_dump() if body.stream_options else {}
        payload["stream_options"] = {**usage, "include_usage": True}
    return payload


async def complete(state: ServiceState, payload: dict[str, Any], request: Request) -> dict[str, Any]:
    """A client that hangs up cancels its vLLM request instead of leaving it to run."""
    return await _unless_disconnected(complete_on_replica(state, payload), request)


async def _unless_disconnected(work: Awaitable[_T], request: Request) -> _T:
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=0.25)
        if done:
            return task.result()
        if await request.is_disconnected():
            task.cancel()
            raise UpstreamError("the client disconnected")


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
        count_tokens(state, tenant, usage)
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


class OwningStream(StreamingResponse):
    """Server-sent events that release what the request holds (its concurrency slot, its adapter lease) when
    the response is done, however it ends: also when the client is gone before the first event, and the
    events' generator never starts, so its own clean-up never runs."""

    def __init__(self, events: AsyncGenerator[str, None], held: AsyncExitStack) -> None:
        super().__init__(events, media_type="text/event-stream")
        self._events = events
        self._held = held

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # The events first: closing them mid-stream aborts the vLLM request, not leaving it to the GC.
            await self._events.aclose()
            await self._held.aclose()


def citations(state: ServiceState, body: ChatRequest, blocks: list[Hit], answer: str) -> list[dict[str, Any]]:
    """Every block the answer was given, each marked whether the answer (its first choice) cites it."""
    cited = cited_blocks(answer, len(blocks))
    attributed = None
    if not cited and state.config.prompt.attribute:
        question = body.question
        texts = [h.text for h in blocks]
        attributed = attributed_block(answer, question, texts, state.retriever.sparse.terms)
    return [
        Citation(
            index=i,
            source=h.source,
            heading=h.heading,
            chunk_id=h.chunk_id,
            score=h.score,
            cited=i in cited or i == attributed,
            attributed=i == attributed,
            text=h.text,
        ).model_dump()
        for i, h in enumerate(blocks, start=1)
    ]


def count_tokens(state: ServiceState, tenant: str, usage: dict[str, Any] | None) -> None:
    if usage:
        state.metrics.tokens.labels(tenant, "prompt").inc(int(usage.get("prompt_tokens") or 0))
        state.metrics.tokens.labels(tenant, "completion").inc(int(usage.get("completion_tokens") or 0))
