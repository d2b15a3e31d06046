"""Generation for one chat request: the vLLM request (the prompt, the model's sampling defaults, the client's
own values), answered whole or streamed as server-sent events, retried once when vLLM has lost the tenant's
adapter, and the citations of the answer."""

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ragserve.errors import ModelNotAllowedError, RagserveError, UpstreamError
from ragserve.ingest.search import Hit
from ragserve.service.attribution import attributed_block
from ragserve.service.http_errors import error_body, status_for
from ragserve.service.prompt import Prompt, cited_blocks
from ragserve.service.schemas import ChatRequest, Citation
from ragserve.service.state import ServiceState

__all__ = [
    "OwningStream",
    "citations",
    "complete",
    "count_tokens",
    "max_tokens_for",
    "sse_events",
    "vllm_payload",
]

ROUTE = "/v1/chat/completions"
_VLLM_SAMPLING = ("top_k", "min_p", "min_tokens", "ignore_eos", "repetition_penalty", "presence_penalty",
                  "frequency_penalty")  # fmt: skip


def max_tokens_for(body: ChatRequest, state: ServiceState) -> int:
    return body.max_completion_tokens or body.max_tokens or state.config.model.max_tokens


def vllm_payload(body: ChatRequest, served: str, prompt: Prompt, state: ServiceState) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "model": served,
        "messages": [{"role": m.role, "content": m.content} for m in prompt.messages],
        "max_tokens": max_tokens_for(body, state),
    }
    # The model's sampling defaults, then what the client sent: the client's own values always win.
    payload.update(state.config.model.sampling())
    for name in ("temperature", "top_p", "stop", "seed"):
        value = getattr(body, name)
        if value is not None:
            payload[name] = value
    # vLLM's own sampling extensions pass through; other unknown fields (user, n, ...) do not.
    extra = body.model_extra or {}
    payload.update({name: extra[name] for name in _VLLM_SAMPLING if name in extra})
    return payload


async def complete(state: ServiceState, payload: dict[str, Any], request: Request) -> dict[str, Any]:
    """A client that hangs up cancels its vLLM request instead of leaving it to run."""
    task = asyncio.create_task(_complete_reloading(state, payload))
    while True:
        done, _ = await asyncio.wait({task}, timeout=0.25)
        if done:
            return task.result()
        if await request.is_disconnected():
            task.cancel()
            raise UpstreamError("the client disconnected")


async def _complete_reloading(state: ServiceState, payload: dict[str, Any]) -> dict[str, Any]:
    """If vLLM answers that the adapter does not exist (it restarted), load it again and retry once."""
    try:
        return await state.vllm.chat(payload)
    except ModelNotAllowedError:
        if not await state.adapters.reload(payload["model"]):
            raise
    return await state.vllm.chat(payload)


async def _stream_reloading(state: ServiceState, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """Streaming, the same: vLLM's 404 comes before the first chunk, so a retry is clean."""
    try:
        async for chunk in state.vllm.stream_chat(payload):
            yield chunk
        return
    except ModelNotAllowedError:
        if not await state.adapters.reload(payload["model"]):
            raise
    async for chunk in state.vllm.stream_chat(payload):
        yield chunk


async def sse_events(
    state: ServiceState,
    tenant: str,
    payload: dict[str, Any],
    prompt: Prompt,
    body: ChatRequest,
    started: float,
) -> AsyncGenerator[str, None]:
    answer: list[str] = []
    usage: dict[str, Any] | None = None
    last: dict[str, Any] = {}
    try:
        async for chunk in _stream_reloading(state, payload):
            if not answer and not last:
                state.metrics.stage_seconds.labels("ttft").observe(time.perf_counter() - started)
            usage = chunk.get("usage") or usage
            if not chunk.get("choices"):
                continue
            last = chunk
            answer.extend(str(c.get("delta", {}).get("content") or "") for c in chunk["choices"])
            yield f"data: {json.dumps(chunk)}\n\n"
        final = {
            "id": last.get("id", ""),
            "object": "chat.completion.chunk",
            "created": last.get("created", int(time.time())),
            "model": last.get("model", payload["model"]),
            "choices": [],
            "usage": usage,
            "citations": citations(state, body, prompt.blocks, "".join(answer)),
        }
        count_tokens(state, tenant, usage)
        yield f"data: {json.dumps(final)}\n\n"
        yield "data: [DONE]\n\n"
    except RagserveError as exc:
        _, type_ = status_for(exc)
        state.metrics.errors.labels(ROUTE, tenant, type_).inc()
        yield f"data: {json.dumps(error_body(str(exc), type_))}\n\n"
    finally:
        state.metrics.stage_seconds.labels("total").observe(time.perf_counter() - started)


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
    cited = cited_blocks(answer, len(blocks))
    attributed = None
    if not cited and state.config.prompt.attribute:
        question = next((m.text() for m in reversed(body.messages) if m.role == "user"), "")
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
