"""One request's answer, whichever OpenAI shape it came in: retrieve the tenant's facts, build the prompt,
generate with vLLM (or quote), check the answer against the blocks, cite. The result is a Chat Completions
response, whole or streamed; the other shapes (legacy completions) are converted from it at their route.
"""

import asyncio
import time
from collections.abc import Callable
from contextlib import AsyncExitStack

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from ragserve.service.answer_check import check_answer, is_plain
from ragserve.service.citations import citations
from ragserve.service.completion import complete
from ragserve.service.context import prompt_for
from ragserve.service.extractive import quote_response
from ragserve.service.owning_stream import OwningStream
from ragserve.service.prompt import Prompt
from ragserve.service.schemas import ChatRequest
from ragserve.service.state import ServiceState
from ragserve.service.streaming import open_stream, sse_events
from ragserve.service.tool_calls import settle_tool_calls
from ragserve.service.vllm_request import vllm_payload

__all__ = ["answer"]


async def answer(
    body: ChatRequest,
    request: Request | None,
    state: ServiceState,
    tenant: str,
    on_prompt: Callable[[Prompt], None] | None = None,
) -> Response:
    """The answer to a chat request as Chat Completions' JSON, or its server-sent events when streamed; the
    tenant's concurrency slot and adapter lease are held until the last event. `on_prompt` sees the prompt
    (its retrieved blocks) before generation starts. `request`: the HTTP request, whose hang-up cancels a
    whole answer; None on a WebSocket, which watches its own connection."""
    started = time.perf_counter()
    stack = AsyncExitStack()
    await stack.enter_async_context(state.limiter.slot(tenant))
    try:
        # The served name and its lease are taken together: an adapter swap from here on
        # leaves this request on the version it started with.
        served = state.served_model(tenant, body.model)
        await stack.enter_async_context(state.adapters.using(served))
        prompt = await prompt_for(state, tenant, body)
        if on_prompt is not None:
            on_prompt(prompt)
        if state.tenants.settings(tenant).answer_mode == "quote" and is_plain(body):  # nothing generated
            return await quote_response(state, tenant, body, prompt, served, started)
        payload = vllm_payload(body, served, prompt, state, tenant)
        if body.stream:
            stream = await open_stream(state, payload)
            stack.push_async_callback(stream[1].aclose)
            response = OwningStream(sse_events(state, tenant, stream, prompt, body, started), stack)
            stack = AsyncExitStack()  # the response now owns the slot and the lease
            return response
        completion = await complete(state, payload, request)
        state.metrics.stage_seconds.labels("ttft").observe(time.perf_counter() - started)
        settle_tool_calls(completion, body)
        message = (completion.get("choices") or [{}])[0].get("message", {})
        content = str(message.get("content") or "")
        checked = await asyncio.to_thread(check_answer, state, tenant, body, prompt, content)
        if checked.replacement is not None:
            message["content"] = checked.replacement
        text = str(message.get("content") or "")
        completion["citations"] = citations(state, body, checked.blocks, text)
        completion["grounding"] = checked.grounding
        state.metrics.count_tokens(tenant, completion.get("usage"))
        state.metrics.stage_seconds.labels("total").observe(time.perf_counter() - started)
        return JSONResponse(completion)
    finally:
        await stack.aclose()
