"""The Responses API's shape of an answer: the chat answer's JSON, or its stream of chunks, converted into a
response object, or into the Responses API's typed events in their order.

The output is, in order: a `file_search_call` when the request gave the file_search tool (its `results`
when `include` asks for them: the blocks the model was given), the assistant `message` whose `output_text`
carries a `file_citation` for each file the answer cites (with the tool only, as OpenAI's), then the
`function_call`s the model made. ragserve's `citations` and `grounding` ride along on the response object,
as on chat's.

A stream is: `response.created`, `response.in_progress`; the file search's item (added, in_progress,
searching, completed, done), since retrieval has finished before the first token; then the message's item and
content part, one `response.output_text.delta` per chunk of text, `output_text.done`, each annotation,
`content_part.done`, `output_item.done`; then each function call (added, its arguments, done); then
`response.completed` (or `response.incomplete` when `max_output_tokens` cut it). An error after the first
event is an `error` event, then `response.failed`. Each event is one SSE message, `event:` naming its type.
"""

import json
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ragserve.errors import RagserveError
from ragserve.ingest.search import Hit
from ragserve.service.http_errors import status_for
from ragserve.service.response_schemas import (
    FileSearchTool,
    FunctionTool,
    ResponsesRequest,
    input_messages,
    item_id,
)
from ragserve.service.vector_stores import Scope

__all__ = ["ResponseShape", "error_event_fields", "new_response_id", "usage_json"]

_ZERO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def new_response_id() -> str:
    return f"resp_{secrets.token_hex(16)}"


@dataclass
class ResponseShape:
    """One response being shaped: what the request asked, and what retrieval gave the model."""

    request: ResponsesRequest
    id: str
    scope: Scope
    history: list[dict[str, Any]]  # the thread before this request's input, as chat messages
    sampling: dict[str, Any] = field(
        default_factory=dict
    )  # the model's defaults, which the request's override
    created_at: int = field(default_factory=lambda: int(time.time()))
    blocks: list[Hit] = field(default_factory=list)  # set when the prompt is built
    search_id: str = field(default_factory=lambda: item_id("fs"))
    message_id: str = field(default_factory=lambda: item_id("msg"))

    # -- whole --

    def response(self, chat: dict[str, Any]) -> dict[str, Any]:
        """The response object for a chat completion's JSON."""
        choice = (chat.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        text = str(message.get("content") or "")
        logprobs = (choice.get("logprobs") or {}).get("content") or []
        output = [self.search_item("completed")] if self.searched else []
        if text or not message.get("tool_calls"):
            done = _item_status(choice.get("finish_reason"))
            output.append(self.message(text, chat.get("citations") or [], logprobs, done))
        output += [self.function_call(call) for call in message.get("tool_calls") or []]
        return self.object(chat, output, choice.get("finish_reason"), chat.get("usage"))

    def thread(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The conversation through this response, as chat messages: what `previous_response_id` continues."""
        answer: dict[str, Any] = {"role": "assistant", "content": body.get("output_text", "")}
        calls = [
            {
                "id": i["call_id"],
                "type": "function",
                "function": {"name": i["name"], "arguments": i["arguments"]},
            }
            for i in body["output"]
            if i["type"] == "function_call"
        ]
        if calls:
            answer["tool_calls"] = calls
        return [*self.history, *input_messages(self.request.items()), answer]

    # -- streamed --

    async def events(
        self,
        chunks: AsyncIterable[str | bytes | memoryview],
        done: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> AsyncIterator[str]:
        """The chat stream's chunks as the Responses API's events; `done` gets the final response object."""
        stream = _Stream(self)
        for event in stream.start():
            yield event
        async for raw in chunks:
            data = (raw if isinstance(raw, str) else bytes(raw).decode()).removeprefix("data: ").strip()
            if not data.startswith("{"):
                continue  # [DONE]
            chunk = json.loads(data)
            if "error" in chunk:
                for event in stream.fail(chunk["error"]):
                    yield event
                return
            for event in stream.take(chunk):
                yield event
        numbered = stream.number
        events, final = stream.finish()
        try:
            await done(final)
        except RagserveError as exc:  # not stored: the client must not count on previous_response_id
            stream.number = numbered  # the closing events are not sent: the failure's take their numbers
            events = stream.fail({"message": str(exc), "type": status_for(exc)[1]})
        for event in events:
            yield event

    # -- pieces --

    @property
    def searched(self) -> bool:
        return self.request.file_search is not None

    def search_item(self, status: str) -> dict[str, Any]:
        results = None
        if status == "completed" and self.request.includes("file_search_call.results"):
            found = [self.scope.hit(hit) for hit in self.blocks]
            results = [
                {
                    "file_id": h.file_id,
                    "filename": h.filename,
                    "score": h.score,
                    "text": h.hit.text,
                    "attributes": h.attributes,
                }
                for h in found
            ]
        return {
            "id": self.search_id,
            "type": "file_search_call",
            "status": status,
            "queries": [self._question],
            "results": results,
        }

    @property
    def _question(self) -> str:
        turns = [i for i in self.request.items() if getattr(i, "role", None) == "user"]
        return turns[-1].text() if turns else ""  # type: ignore[union-attr]

    def message(
        self,
        text: str,
        citations: list[dict[str, Any]],
        logprobs: list[dict[str, Any]],
        status: str,
    ) -> dict[str, Any]:
        """The assistant's message item; an unfinished one has no content yet."""
        content = [_text_part(text, self._annotations(citations), _logprobs(logprobs))]
        return {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "status": status,
            "content": content if status != "in_progress" else [],
        }

    def _annotations(self, citations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A file_citation per file the answer cites, in the order of the blocks; `index` is the block's
        position among the file search's results. Only when the request gave the file_search tool, as
        OpenAI's: without it, the answer's sources are in `citations` alone."""
        if not self.searched:
            return []
        found: list[dict[str, Any]] = []
        seen: set[str] = set()
        for position, citation in enumerate(citations):
            if not citation.get("cited"):
                continue
            file_id, filename, _ = self.scope.file(str(citation["source"]))
            if file_id not in seen:
                seen.add(file_id)
                found.append(
                    {"type": "file_citation", "file_id": file_id, "filename": filename, "index": position}
                )
        return found

    def function_call(self, call: dict[str, Any]) -> dict[str, Any]:
        function = call.get("function") or {}
        return {
            "id": item_id("fc"),
            "type": "function_call",
            "call_id": call.get("id") or item_id("call"),
            "name": function.get("name", ""),
            "arguments": function.get("arguments") or "",
            "status": "completed",
        }

    def object(
        self,
        chat: dict[str, Any],
        output: list[dict[str, Any]],
        reason: str | None,
        usage: dict[str, Any] | None,
        status: str | None = None,
    ) -> dict[str, Any]:
        request = self.request
        cut = reason == "length"
        status = status or ("incomplete" if cut else "completed")
        texts = [p["text"] for i in output if i["type"] == "message" for p in i["content"]]
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "completed_at": int(time.time()) if status in ("completed", "incomplete") else None,
            "status": status,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "model": chat.get("model") or request.model,
            "instructions": request.instructions,
            "previous_response_id": request.previous_response_id,
            "output": output,
            "output_text": "".join(texts),
            "tools": [_tool_json(t) for t in request.tools or []],
            "tool_choice": request.tool_choice
            if isinstance(request.tool_choice, str)
            else (request.tool_choice.model_dump() if request.tool_choice else "auto"),
            "parallel_tool_calls": request.parallel_tool_calls is not False,
            "max_output_tokens": request.max_output_tokens,
            "max_tool_calls": request.max_tool_calls,
            "temperature": self._sampled("temperature"),
            "top_p": self._sampled("top_p"),
            "top_logprobs": request.top_logprobs or 0,
            "presence_penalty": self._sampled("presence_penalty", 0.0),
            "frequency_penalty": self._sampled("frequency_penalty", 0.0),
            "truncation": request.truncation or "disabled",
            "text": {
                "format": request.text.format.model_dump(by_alias=True, exclude_none=True)
                if request.text and request.text.format
                else {"type": "text"}
            },
            "reasoning": {"effort": None, "summary": None},
            "store": request.store,
            "background": False,
            "service_tier": request.service_tier or "default",
            "metadata": request.metadata or {},
            "user": request.user,
            "safety_identifier": request.safety_identifier,
            "prompt_cache_key": request.prompt_cache_key,
            "usage": usage_json(usage) if status != "in_progress" else None,
        }
        if "citations" in chat or "grounding" in chat:
            body["citations"] = chat.get("citations") or []
            body["grounding"] = chat.get("grounding")
        return body

    def _sampled(self, name: str, unset: float = 1.0) -> float:
        """What the model sampled with: the request's value, else the model's default, else vLLM's."""
        value = getattr(self.request, name, None)
        if value is None:
            value = self.sampling.get(name)
        return float(unset if value is None else value)


class _Stream:
    """One streamed response's events, as the chat chunks come: its output items so far, the message's text,
    the function calls being put together, the finish reason and usage."""

    def __init__(self, shape: ResponseShape) -> None:
        self.shape = shape
        self.number = 0
        self.output: list[dict[str, Any]] = []
        self.text: list[str] = []
        self.logprobs: list[dict[str, Any]] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.cited: dict[str, Any] = {}  # the chunk that carries the citations and the grounding
        self.reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.opened = False  # the message's item and content part have been announced

    def event(self, kind: str, **fields: Any) -> str:
        """One SSE message: `event:` and a `data:` line carrying the type and the sequence number."""
        data = {"type": kind, "sequence_number": self.number, **fields}
        self.number += 1
        return f"event: {kind}\ndata: {json.dumps(data)}\n\n"

    def _text_event(self, kind: str, **fields: Any) -> str:
        """An event about the message's one text part."""
        where = {"item_id": self.shape.message_id, "output_index": len(self.output), "content_index": 0}
        return self.event(kind, **where, **fields)

    def start(self) -> list[str]:
        shape = self.shape
        waiting = shape.object({}, [], None, None, "in_progress")
        events = [self.event("response.created", response=waiting)]
        events.append(self.event("response.in_progress", response=waiting))
        if shape.searched:  # retrieval is over before the first token: the search's item comes whole
            events.append(
                self.event(
                    "response.output_item.added", output_index=0, item=shape.search_item("in_progress")
                )
            )
            for step in ("in_progress", "searching", "completed"):
                events.append(
                    self.event(f"response.file_search_call.{step}", output_index=0, item_id=shape.search_id)
                )
            finished = shape.search_item("completed")
            events.append(self.event("response.output_item.done", output_index=0, item=finished))
            self.output.append(finished)
        return events

    def take(self, chunk: dict[str, Any]) -> list[str]:
        if "citations" in chunk:
            self.cited = chunk
        self.usage = chunk.get("usage") or self.usage
        events: list[str] = []
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            self.reason = choice.get("finish_reason") or self.reason
            delta = choice.get("delta") or {}
            for call in delta.get("tool_calls") or []:
                _merge_call(self.calls.setdefault(int(call.get("index", 0)), {}), call)
            piece = str(delta.get("content") or "")
            if piece:
                pieces = (choice.get("logprobs") or {}).get("content") or []
                events += self._open()
                self.text.append(piece)
                self.logprobs += pieces
                events.append(
                    self._text_event("response.output_text.delta", delta=piece, logprobs=_logprobs(pieces))
                )
        return events

    def _open(self) -> list[str]:
        if self.opened:
            return []
        self.opened = True
        empty = self.shape.message("", [], [], "in_progress")
        return [
            self.event("response.output_item.added", output_index=len(self.output), item=empty),
            self._text_event("response.content_part.added", part=_text_part("", [], None)),
        ]

    def finish(self) -> tuple[list[str], dict[str, Any]]:
        """The closing events, the final response's last; and that response."""
        events: list[str] = []
        if self.opened or not self.calls:  # an answer of tool calls alone has no message
            events += self._open()
            whole = "".join(self.text)
            cited = self.cited.get("citations") or []
            message = self.shape.message(whole, cited, self.logprobs, _item_status(self.reason))
            part = message["content"][0]
            events.append(
                self._text_event("response.output_text.done", text=whole, logprobs=part["logprobs"])
            )
            for i, annotation in enumerate(part["annotations"]):
                events.append(
                    self._text_event(
                        "response.output_text.annotation.added", annotation_index=i, annotation=annotation
                    )
                )
            events.append(self._text_event("response.content_part.done", part=part))
            events.append(
                self.event("response.output_item.done", output_index=len(self.output), item=message)
            )
            self.output.append(message)
        for call in (self.calls[i] for i in sorted(self.calls)):
            item = self.shape.function_call(call)
            at = {"output_index": len(self.output)}
            events.append(
                self.event(
                    "response.output_item.added",
                    **at,
                    item={**item, "arguments": "", "status": "in_progress"},
                )
            )
            events.append(
                self.event(
                    "response.function_call_arguments.delta",
                    **at,
                    item_id=item["id"],
                    delta=item["arguments"],
                )
            )
            events.append(
                self.event(
                    "response.function_call_arguments.done",
                    **at,
                    item_id=item["id"],
                    arguments=item["arguments"],
                    name=item["name"],
                )
            )
            events.append(self.event("response.output_item.done", **at, item=item))
            self.output.append(item)
        final = self.shape.object(self.cited, self.output, self.reason, self.usage)
        kind = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        events.append(self.event(kind, response=final))
        return events, final

    def fail(self, error: dict[str, Any]) -> list[str]:
        """An error after the stream began: the `error` event, then `response.failed`."""
        failed = self.shape.object({}, self.output, None, self.usage, "failed")
        failed["error"] = {"code": "server_error", "message": str(error.get("message"))}
        return [
            self.event("error", **error_event_fields(error)),
            self.event("response.failed", response=failed),
        ]


def error_event_fields(error: dict[str, Any]) -> dict[str, Any]:
    """An `error` event's fields for an OpenAI-shaped error: OpenAI's event has `code`, `message` and
    `param`; Open Responses' nests them in `error`. Both, so either's clients read it."""
    fields = {
        "code": error.get("code") or error.get("type"),
        "message": str(error.get("message")),
        "param": error.get("param"),
    }
    return {**fields, "error": fields}


def _item_status(reason: str | None) -> str:
    """A message cut by `max_output_tokens` is incomplete, as its response is."""
    return "incomplete" if reason == "length" else "completed"


def _text_part(
    text: str, annotations: list[dict[str, Any]], logprobs: list[dict[str, Any]] | None
) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": annotations, "logprobs": logprobs or []}


def _logprobs(tokens: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "token": t.get("token", ""),
            "logprob": t.get("logprob", 0.0),
            "bytes": t.get("bytes") or [],
            "top_logprobs": [
                {
                    "token": top.get("token", ""),
                    "logprob": top.get("logprob", 0.0),
                    "bytes": top.get("bytes") or [],
                }
                for top in t.get("top_logprobs") or []
            ],
        }
        for t in tokens
    ]


def usage_json(chat: dict[str, Any] | None) -> dict[str, Any]:
    """A chat completion's usage as the Responses API reports it."""
    usage = chat or _ZERO_USAGE
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") or 0 if isinstance(details, dict) else 0
    return {
        "input_tokens": usage.get("prompt_tokens", 0),
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": usage.get("completion_tokens", 0),
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.get("total_tokens", 0),
    }


def _tool_json(tool: FunctionTool | FileSearchTool) -> dict[str, Any]:
    if isinstance(tool, FunctionTool):
        return {"description": None, "parameters": None, "strict": None, **tool.model_dump(exclude_none=True)}
    return tool.model_dump(exclude_none=True)


def _merge_call(into: dict[str, Any], delta: dict[str, Any]) -> None:
    """A streamed tool call's pieces, put together: its id and name once, its arguments in parts."""
    if delta.get("id"):
        into["id"] = delta["id"]
    function = into.setdefault("function", {"name": "", "arguments": ""})
    piece = delta.get("function") or {}
    if piece.get("name"):
        function["name"] = piece["name"]
    function["arguments"] += piece.get("arguments") or ""
