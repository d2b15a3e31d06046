"""The answer of a tenant whose `answer_mode` is "quote": a passage of its documents, verbatim, or "I don't
know.", with nothing generated, in the shapes of a chat completion and of its stream."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

from fastapi.responses import JSONResponse, Response, StreamingResponse

from ragserve.service.answer_check import quoted_answer
from ragserve.service.citations import citations
from ragserve.service.prompt import Prompt
from ragserve.service.schemas import ChatRequest
from ragserve.service.state import ServiceState
from ragserve.service.streaming import sse_event, text_chunks

__all__ = ["quote_response"]

# The model is not called: no token is read or written.
_NO_TOKENS = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


async def quote_response(
    state: ServiceState, tenant: str, body: ChatRequest, prompt: Prompt, model: str, started: float
) -> Response:
    checked = await asyncio.to_thread(quoted_answer, state, tenant, body, prompt)
    text = checked.replacement or ""
    head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": model}
    extra = {"citations": citations(state, body, checked.blocks, text), "grounding": checked.grounding}
    state.metrics.stage_seconds.labels("ttft").observe(time.perf_counter() - started)
    state.metrics.stage_seconds.labels("total").observe(time.perf_counter() - started)
    if body.stream:
        chunks = text_chunks({**head, "object": "chat.completion.chunk"}, text)
        chunks[-1].update(extra)
        if body.include_usage:
            chunks.append({**chunks[0], "choices": [], "usage": _NO_TOKENS})
        events = [sse_event(chunk) for chunk in chunks]
        return StreamingResponse(_sent([*events, "data: [DONE]\n\n"]), media_type="text/event-stream")
    message = {"role": "assistant", "content": text}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
    completion = {**head, "object": "chat.completion", "choices": [choice], "usage": _NO_TOKENS}
    return JSONResponse({**completion, **extra})


async def _sent(events: list[str]) -> AsyncIterator[str]:
    for item in events:
        yield item
