"""POST /v1/responses (OpenAI's Responses API), with retrieval and deletion of stored responses: answered
down the one answer path, as chat is (service/answering.py), and shaped by service/response_shape.py."""

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError

from ragserve.errors import InvalidRequestError, validation_problems
from ragserve.service.answering import answer
from ragserve.service.deps import StateDep, TenantDep
from ragserve.service.prompt import Prompt
from ragserve.service.response_schemas import ResponsesRequest
from ragserve.service.response_shape import ResponseShape, new_response_id
from ragserve.service.schemas import ChatRequest
from ragserve.service.vector_stores import DEFAULT_STORE

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["responses"])


@router.post("/responses")
async def create_response(
    body: ResponsesRequest, request: Request, state: StateDep, tenant: TenantDep
) -> Response:
    """OpenAI's Responses API, streamed (typed events) or not, answered from the caller's tenant's documents
    by the same retrieval, prompt, adapter and answer checking as chat.

    `instructions` is the system turn; `input` is text or items (messages with text, `function_call`,
    `function_call_output`); `previous_response_id` continues a stored response's thread (`store`, on by
    default). `max_output_tokens`, `temperature`, `top_p`, `top_logprobs`, `text.format` (`json_schema`,
    `json_object`), `function` tools with `tool_choice` and `parallel_tool_calls` are translated for vLLM.
    The `file_search` tool names the stores retrieval reads (`vector_store_ids`, `filters`,
    `max_num_results` up to 20 blocks in the prompt, `ranking_options.score_threshold`); without it,
    retrieval reads all the tenant's documents, as chat does. The answer's text carries a `file_citation`
    per file it cites; `include: ["file_search_call.results"]` adds the blocks the model was given."""
    history: list[dict[str, Any]] = []
    if body.previous_response_id is not None:
        history = (await asyncio.to_thread(state.responses.get, tenant, body.previous_response_id)).thread
    search = body.file_search
    stores = search.vector_store_ids if search else [DEFAULT_STORE]
    filters = search.filters if search else None
    scope = await asyncio.to_thread(state.vector_stores.scope, tenant, stores, filters)
    threshold = search.ranking_options.score_threshold if search and search.ranking_options else 0.0
    shape = ResponseShape(body, new_response_id(), scope, history, state.config.model.sampling())
    chat = _chat(body, history).within(scope.sources, threshold)

    def seen(prompt: Prompt) -> None:
        shape.blocks = prompt.blocks

    answered = await answer(chat, request, state, tenant, on_prompt=seen)

    async def keep(final: dict[str, Any]) -> None:
        if body.store:
            await asyncio.to_thread(state.responses.add, tenant, shape.id, shape.thread(final), final)

    if isinstance(answered, StreamingResponse):
        answered.body_iterator = shape.events(answered.body_iterator, keep)
        return answered
    completion = json.loads(bytes(answered.body))
    if "choices" not in completion:  # an error
        return answered
    final = shape.response(completion)
    await keep(final)
    return JSONResponse(final)


@router.get("/responses/{response_id}")
async def get_response(response_id: str, state: StateDep, tenant: TenantDep) -> dict[str, Any]:
    return (await asyncio.to_thread(state.responses.get, tenant, response_id)).body


@router.delete("/responses/{response_id}")
async def delete_response(response_id: str, state: StateDep, tenant: TenantDep) -> dict[str, Any]:
    await asyncio.to_thread(state.responses.delete, tenant, response_id)
    return {"id": response_id, "object": "response", "deleted": True}


def _chat(body: ResponsesRequest, history: list[dict[str, Any]]) -> ChatRequest:
    try:
        return body.as_chat(history)
    except ValidationError as exc:  # the thread and input together break a chat bound (its turns, say)
        raise InvalidRequestError(f"input: {validation_problems(exc)}", param="input") from None
