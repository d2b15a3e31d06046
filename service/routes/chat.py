"""POST /v1/chat/completions, and the legacy POST /v1/completions: retrieve the tenant's facts, build the
prompt, generate with vLLM, cite; both down one path (service/answering.py)."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ragserve.service.answering import answer
from ragserve.service.deps import StateDep, TenantDep
from ragserve.service.schemas import ChatRequest, CompletionRequest
from ragserve.service.text_completion import as_text_completion

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
    return await answer(body, request, state, tenant)


@router.post("/completions")
async def completions(
    body: CompletionRequest, request: Request, state: StateDep, tenant: TenantDep
) -> Response:
    """OpenAI's legacy Completions, which LlamaIndex's `OpenAILike` calls by default: the prompt is answered
    as one user turn, down the same retrieval, prompt, adapter and answer-checking path as chat, and returned
    as `text_completion` objects (streamed or not) with the same `citations` and `grounding`.

    `logprobs: N` gives the legacy `tokens`/`token_logprobs`/`top_logprobs`/`text_offset`. A left-out
    `max_tokens` takes the config's default, not the legacy 16. One prompt per request, as text; `echo`,
    `suffix` and `best_of` above 1 are a 400 naming them."""
    return as_text_completion(await answer(body.as_chat(), request, state, tenant))
