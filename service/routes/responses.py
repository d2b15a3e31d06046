"""POST /v1/responses (OpenAI's Responses API), with retrieval, input items and deletion of stored responses:
answered down the one answer path, as chat is (service/answering.py), shaped by service/response_shape.py."""

import asyncio
import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, WebSocket
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError

from ragserve.errors import (
    InvalidRequestError,
    PromptTooLongError,
    ResponseNotFoundError,
    validation_problems,
)
from ragserve.service.answering import answer
from ragserve.service.compaction import SUMMARISE, sealed, transcript
from ragserve.service.deps import StateDep, TenantDep
from ragserve.service.pages import PageDep
from ragserve.service.prompt import Prompt
from ragserve.service.response_schemas import (
    CompactRequest,
    MessageItem,
    ResponsesRequest,
    input_messages,
    item_id,
)
from ragserve.service.response_shape import ResponseShape, new_response_id, usage_json
from ragserve.service.response_socket import ResponseSocket
from ragserve.service.schemas import ChatRequest
from ragserve.service.state import ServiceState
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
    translated for vLLM. The `file_search` tool names the stores retrieval reads (`vector_store_ids`,
    `filters`, `max_num_results` up to 20 blocks in the prompt, `ranking_options.score_threshold`); without
    it, retrieval reads all the tenant's documents, as chat does. The answer's text carries a `file_citation`
    per file it cites; `include: ["file_search_call.results"]` adds the blocks the model was given."""
    return await respond(body, request, state, tenant)


@router.websocket("/responses")
async def responses_socket(websocket: WebSocket) -> None:
    """WebSocket mode (the SDKs' `responses.connect()`): each `response.create` message, with the fields of
    `POST /v1/responses`, is answered by its stream's events, one JSON message each, on the connection; the
    key is the handshake's `Authorization` header, checked again for each response."""
    await ResponseSocket(websocket, websocket.app.state.ragserve, respond).serve()


async def respond(
    body: ResponsesRequest,
    request: Request | None,
    state: ServiceState,
    tenant: str,
    remembered: dict[str, list[dict[str, Any]]] | None = None,
) -> Response:
    """The response to `body`: its JSON, or its typed events when streamed. `request`: the HTTP request,
    whose hang-up cancels a whole answer; None on a WebSocket. `remembered`: a WebSocket's memory of its
    latest response's thread (by id), which `previous_response_id` continues even when it was not stored;
    this response's thread replaces it, and a continuation that fails forgets it."""
    previous = body.previous_response_id
    if remembered is not None and previous in remembered:
        history = remembered.pop(previous)
    else:
        history = await _thread_before(state, tenant, previous)
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
        thread = shape.thread(final)
        if remembered is not None:
            remembered.clear()
            remembered[shape.id] = thread
        if body.store:
            kept = NewResponse(shape.id, thread, [item.listed() for item in body.items()], final)
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


@router.post("/responses/compact")
async def compact_response(
    body: CompactRequest, request: Request, state: StateDep, tenant: TenantDep
) -> Response:
    """Compacts a conversation (a stored response's thread, then `input`) for a new chain: the user's
    messages are kept as they are, and the model's summary of the whole conversation becomes one
    `compaction` item, which a later request's `input` takes as a system turn. Send the output, with the
    next message, as the input of a request without `previous_response_id`."""
    messages = await _thread_before(state, tenant, body.previous_response_id) + input_messages(body.items())
    output: list[dict[str, Any]] = [
        MessageItem(role="user", content=str(m["content"])).listed() for m in messages if m["role"] == "user"
    ]
    summary, usage = "", None
    if any(m["role"] != "user" for m in messages):
        instruction = "\n\n".join(filter(None, [body.instructions, SUMMARISE]))
        chat = ChatRequest.model_validate(
            {
                "model": body.model,
                "messages": [{"role": "system", "content": instruction}, *transcript(messages)],
                "rag": False,
                "temperature": 0,
                "max_tokens": 256,
                # A schema, so the summary comes back whole and parseable, and is generated even for a
                # tenant whose answers are quotes.
                "response_format": _SUMMARY_FORMAT,
            }
        )
        answered = await answer(chat, request, state, tenant)
        completion = json.loads(bytes(answered.body))
        if "choices" not in completion:  # an error
            return answered
        summary, usage = _summary_of(completion), completion.get("usage")
    output.append({"type": "compaction", "id": item_id("cmp"), "encrypted_content": sealed(summary)})
    return JSONResponse(
        {
            "id": item_id("resp"),
            "object": "response.compaction",
            "created_at": int(time.time()),
            "output": output,
            "usage": usage_json(usage),
        }
    )


_SUMMARY = {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}
_SUMMARY_FORMAT = {"type": "json_schema", "json_schema": {"name": "summary", "schema": _SUMMARY}}


def _summary_of(completion: dict[str, Any]) -> str:
    text = str(completion["choices"][0]["message"].get("content") or "")
    try:
        found = json.loads(text).get("summary")
    except (json.JSONDecodeError, AttributeError):  # cut by max_tokens: the summary's text so far
        return text.split('"summary"', 1)[-1].lstrip(' :"')
    return str(found) if found is not None else text


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


async def _thread_before(state: ServiceState, tenant: str, previous: str | None) -> list[dict[str, Any]]:
    """The stored thread a `previous_response_id` continues (none without one)."""
    if previous is None:
        return []
    try:
        return (await asyncio.to_thread(state.responses.get, tenant, previous)).thread
    except ResponseNotFoundError:
        raise ResponseNotFoundError(
            f"previous_response_id: no response {previous!r}",
            param="previous_response_id",
            code="previous_response_not_found",
        ) from None


def _chat(body: ResponsesRequest, history: list[dict[str, Any]]) -> ChatRequest:
    try:
        return body.as_chat(history)
    except ValidationError as exc:  # the thread and input together break a chat bound (its turns, say)
        raise InvalidRequestError(f"input: {validation_problems(exc)}", param="input") from None
