"""The Responses API's request body (`POST /v1/responses`), and its translation into the chat request that
answers it down the one answer path (service/answering.py).

Every field a client may send is named here with its bounds: what changes the answer is translated, what
cannot (`metadata`, `user`, `prompt_cache_key`, ...) is accepted, and a feature ragserve does not have
(`reasoning`, `background`, `conversation`, `prompt`, tools other than `function` and `file_search`, input
that is not text) is a 400 naming the field, never silence.
"""

import secrets
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ragserve.errors import InvalidRequestError
from ragserve.service.attribute_filters import AttributeFilter
from ragserve.service.compaction import EARLIER, unsealed
from ragserve.service.schemas import ChatRequest, RequestBody
from ragserve.service.vector_store_schemas import check_filters

__all__ = ["CompactRequest", "FileSearchTool", "FunctionTool", "ResponsesRequest", "item_id"]

_MAX_TEXT = 1_000_000
_MAX_K = 20  # blocks that reach the prompt, as chat's `k`
Text = Annotated[str, Field(max_length=_MAX_TEXT)]
ItemId = Annotated[str, Field(max_length=256)]


def item_id(prefix: str) -> str:
    """A new id for an item of a response, OpenAI's way: `msg_...`, `fc_...`."""
    return f"{prefix}_{secrets.token_hex(12)}"


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def listed(self) -> dict[str, Any]:
        """The item as `GET /v1/responses/{id}/input_items` lists it: with an id, and done."""
        return {"status": "completed", **self.model_dump(exclude_none=True)}


class TextPart(_Item):
    """Text in an input item: the user's `input_text`, or an earlier answer's `output_text` sent back."""

    model_config = ConfigDict(extra="allow")  # an output_text sent back carries its annotations and logprobs

    type: Literal["input_text", "output_text"]
    text: Text


class MessageItem(_Item):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: Text | Annotated[list[TextPart], Field(max_length=64)]
    id: ItemId | None = None
    status: str | None = None
    phase: Literal["commentary", "final_answer"] | None = None  # an assistant turn's; read as its text alone

    @field_validator("content", mode="before")
    @classmethod
    def _text_only(cls, content: Any) -> Any:
        for part in content if isinstance(content, list) else []:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in ("input_text", "output_text"):
                raise ValueError(f"only text content is supported, not {kind!r}")
        return content

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "\n".join(p.text for p in self.content)

    def listed(self) -> dict[str, Any]:
        if isinstance(self.content, str):  # the easy form, as the typed parts it stands for
            kind = "output_text" if self.role == "assistant" else "input_text"
            extra: dict[str, Any] = {"annotations": []} if self.role == "assistant" else {}
            content: list[dict[str, Any]] = [{"type": kind, "text": self.content, **extra}]
        else:
            content = [part.model_dump() for part in self.content]
        return {**super().listed(), "id": self.id or item_id("msg"), "content": content}


class FunctionCallItem(_Item):
    type: Literal["function_call"]
    call_id: ItemId
    name: Annotated[str, Field(max_length=128)]
    arguments: Text
    id: ItemId | None = None
    status: str | None = None

    def listed(self) -> dict[str, Any]:
        return {**super().listed(), "id": self.id or item_id("fc")}


class FunctionCallOutputItem(_Item):
    type: Literal["function_call_output"]
    call_id: ItemId
    output: Text | Annotated[list[TextPart], Field(max_length=64)]
    id: ItemId | None = None
    status: str | None = None

    def text(self) -> str:
        return self.output if isinstance(self.output, str) else "\n".join(p.text for p in self.output)

    def listed(self) -> dict[str, Any]:
        return {**super().listed(), "id": self.id or item_id("fco")}


class FileSearchCallItem(_Item):
    """An earlier response's search, sent back as history: it says nothing the next answer needs (its facts
    are retrieved afresh), so it is read and left out."""

    model_config = ConfigDict(extra="allow")

    type: Literal["file_search_call"]
    id: ItemId


class CompactionItem(_Item):
    """What `/v1/responses/compact` made of a conversation's earlier turns, sent back in their place."""

    type: Literal["compaction"]
    encrypted_content: Annotated[str, Field(max_length=_MAX_TEXT)]
    id: ItemId | None = None
    created_by: Annotated[str, Field(max_length=256)] | None = None

    def summary(self) -> str:
        try:
            return unsealed(self.encrypted_content)
        except ValueError as exc:
            raise InvalidRequestError(f"input: {exc}", param="input") from None

    def listed(self) -> dict[str, Any]:
        return {**super().listed(), "id": self.id or item_id("cmp")}


AnyItem = MessageItem | FunctionCallItem | FunctionCallOutputItem | FileSearchCallItem | CompactionItem
InputItem = Annotated[AnyItem, Field(discriminator="type")]


class FunctionTool(_Item):
    type: Literal["function"]
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    description: Annotated[str, Field(max_length=4096)] | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    def as_chat(self) -> dict[str, Any]:
        function: dict[str, Any] = {"name": self.name, "parameters": self.parameters or {"type": "object"}}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}


class _RankingOptions(_Item):
    ranker: Literal["none", "auto", "default-2024-11-15"] = "auto"
    score_threshold: Annotated[float, Field(ge=0, le=1)] = 0.0


class FileSearchTool(_Item):
    """Retrieval from these stores of the tenant's (each answer retrieves; this says from where)."""

    type: Literal["file_search"]
    vector_store_ids: Annotated[
        list[Annotated[str, Field(max_length=64)]], Field(min_length=1, max_length=16)
    ]
    max_num_results: Annotated[int, Field(ge=1, le=50)] | None = None
    filters: AttributeFilter | None = None
    ranking_options: _RankingOptions | None = None

    _filters = field_validator("filters")(check_filters)


Tool = Annotated[FunctionTool | FileSearchTool, Field(discriminator="type")]


class _Format(_Item):
    type: Literal["text", "json_object", "json_schema"]
    name: Annotated[str, Field(max_length=64)] | None = None
    schema_: Annotated[dict[str, Any] | None, Field(alias="schema")] = None
    description: Annotated[str, Field(max_length=4096)] | None = None
    strict: bool | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> "_Format":
        if self.type == "json_schema" and (self.schema_ is None or not self.name):
            raise ValueError("type json_schema needs its name and schema")
        return self

    def as_chat(self) -> dict[str, Any] | None:
        if self.type == "text":
            return None
        if self.type == "json_object":
            return {"type": "json_object"}
        return {
            "type": "json_schema",
            "json_schema": {"name": self.name, "schema": self.schema_, "strict": bool(self.strict)},
        }


class TextConfig(_Item):
    format: _Format | None = None
    verbosity: Literal["medium"] | None = None  # the model's own; another one cannot be asked of it


class _NamedFunction(_Item):
    type: Literal["function"]
    name: Annotated[str, Field(max_length=64)]


class _NamedTool(_Item):
    type: Literal["file_search"]


def _typed_items(cls: type[BaseModel], items: Any) -> Any:
    """An item with a role and no type is a message (the SDKs' easy input form)."""
    if isinstance(items, list):
        return [{"type": "message", **i} if isinstance(i, dict) and "type" not in i else i for i in items]
    return items


def _as_items(given: "str | list[AnyItem] | None") -> list[AnyItem]:
    if given is None:
        return []
    return [MessageItem(role="user", content=given)] if isinstance(given, str) else list(given)


class CompactRequest(RequestBody):
    """`POST /v1/responses/compact`: the conversation to compact, a stored response's thread and then the
    input, as `POST /v1/responses` names them."""

    model: Annotated[str, Field(max_length=256)]
    input: Text | Annotated[list[InputItem], Field(max_length=200)] | None = None
    previous_response_id: Annotated[str, Field(max_length=64)] | None = None
    instructions: Text | None = None
    # Accepted: vLLM caches prefixes on its own, and there is one tier.
    prompt_cache_key: Annotated[str, Field(max_length=256)] | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    service_tier: Literal["auto", "default", "fast", "flex", "priority"] | None = None

    _typed = field_validator("input", mode="before")(_typed_items)

    def items(self) -> list[AnyItem]:
        return _as_items(self.input)


class ResponsesRequest(RequestBody):
    model: Annotated[str, Field(max_length=256)] = "default"
    input: Text | Annotated[list[InputItem], Field(min_length=1, max_length=200)]
    instructions: Text | None = None
    previous_response_id: Annotated[str, Field(max_length=64)] | None = None
    max_output_tokens: Annotated[int, Field(ge=1, le=32768)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    stream: bool = False
    store: bool = True
    include: (
        Annotated[
            list[Literal["file_search_call.results", "message.output_text.logprobs"]], Field(max_length=8)
        ]
        | None
    ) = None
    text: TextConfig | None = None
    tools: Annotated[list[Tool], Field(max_length=128)] | None = None
    tool_choice: Literal["none", "auto", "required"] | _NamedFunction | _NamedTool | None = None
    parallel_tool_calls: bool | None = None
    max_tool_calls: Annotated[int, Field(ge=1)] | None = None
    truncation: Literal["disabled", "auto"] | None = None
    # Accepted and not passed on: they cannot change the answer.
    metadata: (
        Annotated[
            dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]],
            Field(max_length=16),
        ]
        | None
    ) = None
    user: Annotated[str, Field(max_length=256)] | None = None
    safety_identifier: Annotated[str, Field(max_length=256)] | None = None
    prompt_cache_key: Annotated[str, Field(max_length=256)] | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None = None
    stream_options: dict[Literal["include_obfuscation"], bool] | None = None
    # Features ragserve has not: named so that asking for one is a 400 that says so.
    reasoning: Any = None
    background: Any = None
    conversation: Any = None
    prompt: Any = None

    _typed = field_validator("input", mode="before")(_typed_items)

    @model_validator(mode="after")
    def _unsupported(self) -> "ResponsesRequest":
        for name, why in (
            ("reasoning", "the model has no reasoning settings"),
            ("background", "responses are answered while the request waits"),
            ("conversation", "continue a thread with previous_response_id"),
            ("prompt", "send the prompt's text as instructions and input"),
        ):
            if getattr(self, name) not in (None, False):
                raise InvalidRequestError(f"{name}: not supported by ragserve: {why}", param=name)
        if self.stream_options is not None and not self.stream:
            raise InvalidRequestError("stream_options needs stream: true", param="stream_options")
        return self

    @property
    def file_search(self) -> FileSearchTool | None:
        """The file_search tool, if given (one at most)."""
        found = [t for t in self.tools or [] if isinstance(t, FileSearchTool)]
        if len(found) > 1:
            raise InvalidRequestError("one file_search tool at most: list every store in it", param="tools")
        return found[0] if found else None

    def includes(self, what: str) -> bool:
        return what in (self.include or [])

    def items(self) -> list[AnyItem]:
        return _as_items(self.input)

    def as_chat(self, history: list[dict[str, Any]]) -> ChatRequest:
        """The chat request that answers this one: the instructions as the system turn, then the thread so far
        (`history`, chat messages), then the input; the sampling fields and tools translated."""
        messages: list[dict[str, Any]] = []
        if self.instructions:
            messages.append({"role": "system", "content": self.instructions})
        messages += history + input_messages(self.items())
        _check_calls_answered(messages)
        chat: dict[str, Any] = {"model": self.model, "messages": messages, "stream": self.stream}
        if self.stream:
            chat["stream_options"] = {"include_usage": True}  # the usage that response.completed reports
        for ours, theirs in (
            ("max_output_tokens", "max_tokens"),
            ("temperature", "temperature"),
            ("top_p", "top_p"),
        ):
            if getattr(self, ours) is not None:
                chat[theirs] = getattr(self, ours)
        if self.includes("message.output_text.logprobs") or self.top_logprobs:
            chat |= {"logprobs": True, "top_logprobs": self.top_logprobs or 0}
        response_format = self.text.format.as_chat() if self.text and self.text.format else None
        if response_format is not None:
            chat["response_format"] = response_format
        functions = [t.as_chat() for t in self.tools or [] if isinstance(t, FunctionTool)]
        if functions:
            chat["tools"] = functions
            if self.parallel_tool_calls is not None:
                chat["parallel_tool_calls"] = self.parallel_tool_calls
        if isinstance(self.tool_choice, _NamedFunction):
            chat["tool_choice"] = {"type": "function", "function": {"name": self.tool_choice.name}}
        elif isinstance(self.tool_choice, str) and functions:
            chat["tool_choice"] = self.tool_choice
        search = self.file_search
        if search is not None and search.max_num_results is not None:
            chat["k"] = min(search.max_num_results, _MAX_K)
        return ChatRequest.model_validate(chat)


def _check_calls_answered(messages: list[dict[str, Any]]) -> None:
    """Each function_call_output answers a function call made before it, in the thread or the input."""
    called: set[str] = set()
    for message in messages:
        called.update(str(call.get("id")) for call in message.get("tool_calls") or [])
        if message["role"] == "tool" and message["tool_call_id"] not in called:
            unknown = message["tool_call_id"]
            raise InvalidRequestError(
                f"input: a function_call_output names call_id {unknown!r}, which no function_call has",
                param="input",
            )


def input_messages(items: list[AnyItem]) -> list[dict[str, Any]]:
    """Input items as chat messages: consecutive function calls are one assistant turn's tool calls; a
    compaction is the summary of the turns it stands for, as a system turn."""
    messages: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, MessageItem):
            messages.append({"role": item.role, "content": item.text()})
        elif isinstance(item, FunctionCallItem):
            call = {
                "id": item.call_id,
                "type": "function",
                "function": {"name": item.name, "arguments": item.arguments},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and last.get("tool_calls"):
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
        elif isinstance(item, FunctionCallOutputItem):
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": item.text()})
        elif isinstance(item, CompactionItem):
            messages.append({"role": "system", "content": EARLIER + item.summary()})
    return messages
