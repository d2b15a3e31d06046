"""POST /v1/responses (OpenAI's Responses API), with retrieval, input items and deletion of stored responses:
answered down the one answer path, as chat is (service/answering.py), shaped by service/response_shape.py."""

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError

from ragserve.errors import InvalidRequestError, PromptTooLongError, validation_problems
from ragserve.service.answering import answer
from ragserve.service.deps import StateDep, TenantDep
from ragserve.service.pages import PageDep
from ragserve.service.prompt import Prompt
from ragserve.service.response_schemas import ResponsesRequest
from ragserve.service.response_shape import ResponseShape, new_response_id
from ragserve.service.schemas import ChatRequest
from ragserve.service.vector_stores import DEFAULT_STORE
from ragserve.state.responses import NewResponse

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
    default). A thread too long for the model's context is a 400 unless `truncation` is `auto`, which
    drops its oldest turns. `max_output_tokens`, `temperature`, `top_p`, `top_logprobs`, `text.format`
    (`json_schema`, `json_object`), `function` tools with `tool_choice` and `parallel_tool_calls` are
    translated for vLLM.
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
    # OpenAI's default truncation is "disabled": a thread that does not fit is refused, not cut.
    chat = _chat(body, history).within(scope.sources, threshold).keeping_turns(body.truncation != "auto")

    def seen(prompt: Prompt) -> None:
        shape.blocks = prompt.blocks

    try:
        answered = await answer(chat, request, state, tenant, on_prompt=seen)
    except PromptTooLongError as exc:
        hint = "" if body.truncation == "auto" else '; with truncation "auto" the oldest turns are dropped'
        raise PromptTooLongError(f"input: {exc}{hint}", param="input") from None

    async def keep(final: dict[str, Any]) -> None:
        if body.store:
            kept = NewResponse(shape.id, shape.thread(final), [item.listed() for item in body.items()], final)
            await asyncio.to_thread(state.responses.add, tenant, kept)

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


@router.get("/responses/{response_id}/input_items")
async def list_input_items(
    response_id: str,
    state: StateDep,
    tenant: TenantDep,
    page: PageDep,
    include: Annotated[list[str] | None, Query(max_length=8)] = None,
) -> dict[str, Any]:
    """The items the response was given as `input` (not those of the thread it continued), newest first
    unless `order` is `asc`, in cursor pages."""
    if include:
        unsupported = f"include: {include[0]!r} is not supported for input items"
        raise InvalidRequestError(unsupported, param="include")
    items = (await asyncio.to_thread(state.responses.get, tenant, response_id)).input
    return page.of(items, lambda item: str(item["id"]), lambda item: item)


@router.delete("/responses/{response_id}")
async def delete_response(response_id: str, state: StateDep, tenant: TenantDep) -> dict[str, Any]:
    await asyncio.to_thread(state.responses.delete, tenant, response_id)
    return {"id": response_id, "object": "response", "deleted": True}


def _chat(body: ResponsesRequest, history: list[dict[str, Any]]) -> ChatRequest:
    try:
        return body.as_chat(history)
    except ValidationError as exc:  # the thread and input together break a chat bound (its turns, say)
        raise InvalidRequestError(f"input: {validation_problems(exc)}", param="input") from None
