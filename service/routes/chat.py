"""POST /v1/chat/completions: retrieve the tenant's facts, build the prompt, generate with vLLM, cite."""

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from ragserve.errors import ModelNotAllowedError, RagserveError, UpstreamError
from ragserve.ingest.search import Hit
from ragserve.service.attribution import attributed_block
from ragserve.service.deps import StateDep, TenantDep
from ragserve.service.focus import focus
from ragserve.service.http_errors import error_body, status_for
from ragserve.service.prompt import Message, Prompt, cited_blocks, retrieval_query
from ragserve.service.retrieval import retrieve_hits
from ragserve.service.schemas import ChatRequest, Citation
from ragserve.service.state import ServiceState

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["chat"])
ROUTE = "/v1/chat/completions"
_VLLM_SAMPLING = ("top_k", "min_p", "min_tokens", "ignore_eos", "repetition_penalty", "presence_penalty",
                  "frequency_penalty")  # fmt: skip


@router.post("/chat/completions")
async def chat_completions(
    body: ChatRequest, request: Request, state: StateDep, tenant: TenantDep
) -> Response:
    started = time.perf_counter()
    stack = AsyncExitStack()
    await stack.enter_async_context(state.limiter.slot())
    try:
        # The served name and its lease are taken together: an adapter swap from here on
        # leaves this request on the version it started with.
        served = state.served_model(tenant, body.model)
        await stack.enter_async_context(state.adapters.using(served))
        prompt = await _prepare(state, tenant, body)
        payload = _payload(body, served, prompt, state)
        if body.stream:
            response = OwningStream(_stream(state, tenant, payload, prompt, body, started), stack)
            stack = AsyncExitStack()  # the response now owns the slot and the lease
            return response
        completion = await _complete_unless_disconnected(state, payload, request)
        state.metrics.stage_seconds.labels("ttft").observe(time.perf_counter() - started)
        answer = str(completion["choices"][0]["message"].get("content") or "")
        completion["citations"] = _citations(state, body, prompt.blocks, answer)
        _count_tokens(state, tenant, completion.get("usage"))
        state.metrics.stage_seconds.labels("total").observe(time.perf_counter() - started)
        return JSONResponse(completion)
    finally:
        await stack.aclose()


async def _prepare(state: ServiceState, tenant: str, body: ChatRequest) -> Prompt:
    turns = [Message("system" if m.role == "developer" else m.role, m.text()) for m in body.messages]
    tenant_config = state.config.tenants[tenant]
    k = tenant_config.k if body.k is None else body.k
    hits: list[Hit] = []
    if body.rag and k > 0:
        t0 = time.perf_counter()
        query = retrieval_query(turns)
        hits = await retrieve_hits(state, tenant, query, k)
        if state.config.prompt.focus_sentences:
            keep = state.config.prompt.focus_sentences
            hits = await asyncio.to_thread(focus, hits, query, state.retriever.embedder, keep)
        state.metrics.stage_seconds.labels("retrieve").observe(time.perf_counter() - t0)
    t0 = time.perf_counter()
    max_tokens = _max_tokens(body, state)
    prompt = await asyncio.to_thread(
        state.prompts.build, tenant_config.system_prompt, hits, turns, max_tokens
    )
    state.metrics.stage_seconds.labels("prompt").observe(time.perf_counter() - t0)
    return prompt


def _max_tokens(body: ChatRequest, state: ServiceState) -> int:
    return body.max_completion_tokens or body.max_tokens or state.config.model.max_tokens


def _payload(body: ChatRequest, served: str, prompt: Prompt, state: ServiceState) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "model": served,
        "messages": [{"role": m.role, "content": m.content} for m in prompt.messages],
        "max_tokens": _max_tokens(body, state),
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


async def _complete_unless_disconnected(
    state: ServiceState, payload: dict[str, Any], request: Request
) -> dict[str, Any]:
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


async def _stream(
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
            "citations": _citations(state, body, prompt.blocks, "".join(answer)),
        }
        _count_tokens(state, tenant, usage)
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


def _citations(
    state: ServiceState, body: ChatRequest, blocks: list[Hit], answer: str
) -> list[dict[str, Any]]:
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


def _count_tokens(state: ServiceState, tenant: str, usage: dict[str, Any] | None) -> None:
    if usage:
        state.metrics.tokens.labels(tenant, "prompt").inc(int(usage.get("prompt_tokens") or 0))
        state.metrics.tokens.labels(tenant, "completion").inc(int(usage.get("completion_tokens") or 0))
