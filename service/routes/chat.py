"""POST /v1/chat/completions: retrieve the tenant's facts, build the prompt, generate with vLLM, cite."""

import asyncio
import time
from contextlib import AsyncExitStack

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ragserve.service.answer_check import check_answer, is_plain
from ragserve.service.citations import citations
from ragserve.service.completion import complete
from ragserve.service.context import prompt_for
from ragserve.service.deps import StateDep, TenantDep
from ragserve.service.extractive import quote_response
from ragserve.service.owning_stream import OwningStream
from ragserve.service.schemas import ChatRequest
from ragserve.service.streaming import open_stream, sse_events
from ragserve.service.tool_calls import settle_tool_calls
from ragserve.service.vllm_request import vllm_payload

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["chat"])


@router.post("/chat/completions")
async def chat_completions(
    body: ChatRequest, request: Request, state: StateDep, tenant: TenantDep
) -> Response:
    """OpenAI's Chat Completions, streamed or not, answered from the caller's tenant's documents.

    The bearer key picks the tenant, never the body. `model` is `default` (the tenant's adapter, or the base
    model) or a name from `/v1/models`. The last user turn plus recent user turns are the retrieval query; the
    prompt is the tenant's system prompt, then the conversation, with the retrieved blocks, the instruction
    and the question, cut to fit the context (lowest-ranked blocks go first, then the oldest turns).

    Passed on to vLLM as sent, each checked against its bounds first: `n`, `temperature`, `top_p`, `stop` (up
    to 4), `seed`, `presence_penalty`, `frequency_penalty`, `logprobs`/`top_logprobs`, `logit_bias`,
    `response_format` (`json_object`, `json_schema`), `tools`/`tool_choice`/`parallel_tool_calls` and `tool`
    turns, and vLLM's `top_k`, `min_p`, `min_tokens`, `ignore_eos`, `repetition_penalty`. `user`, `metadata`,
    `store` and `service_tier` are accepted and change nothing; any other field is a 400 naming it. Extras:
    `"rag": false` (no retrieval), `"k": N` (blocks retrieved). Sampling fields left out take the config's
    `[model]` defaults.

    The response adds `citations: [{index, source, heading, chunk_id, score, cited, attributed, text}]` and
    `grounding: {support, answers_question, claims: [{start, end, score, supported, blocks, unknown}],
    policy, replaced}`; a stream carries both in its last chunk before `[DONE]`."""
    started = time.perf_counter()
    stack = AsyncExitStack()
    await stack.enter_async_context(state.limiter.slot(tenant))
    try:
        # The served name and its lease are taken together: an adapter swap from here on
        # leaves this request on the version it started with.
        served = state.served_model(tenant, body.model)
        await stack.enter_async_context(state.adapters.using(served))
        prompt = await prompt_for(state, tenant, body)
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
        answer = str(message.get("content") or "")
        completion["citations"] = citations(state, body, checked.blocks, answer)
        completion["grounding"] = checked.grounding
        state.metrics.count_tokens(tenant, completion.get("usage"))
        state.metrics.stage_seconds.labels("total").observe(time.perf_counter() - started)
        return JSONResponse(completion)
    finally:
        await stack.aclose()
