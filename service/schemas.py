"""Request and response bodies of the OpenAI-compatible API, plus ragserve's retrieval extensions.

Every field a client may send is named here, with its bounds: what vLLM supports is passed on, what cannot
change the answer (`user`, `metadata`, ...) is accepted, and anything else is a 400 naming the field, so
nothing a client asked for is dropped silently.
"""

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ragserve.errors import InvalidRequestError

__all__ = [
    "ChatMessage",
    "ChatRequest",
    "Citation",
    "CompletionRequest",
    "RequestBody",
    "RetrieveRequest",
    "StreamOptions",
]

_INT64 = 2**63
Bias = Annotated[float, Field(ge=-100, le=100)]
_MAX_TEXT = 1_000_000  # characters in one message; the body limit (RAGSERVE_MAX_BODY_BYTES) comes first


def _lone_surrogate(value: Any, path: str) -> str | None:
    """Where in a parsed JSON body a string holds a lone surrogate (JSON's "\\ud800" escapes allow one; no
    UTF-8 can hold it), or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "body"
    elif isinstance(value, dict):
        for key, item in value.items():
            found = _lone_surrogate(key, path) or _lone_surrogate(item, f"{path}.{key}".lstrip("."))
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _lone_surrogate(item, f"{path}.{i}")
            if found:
                return found
    return None


class RequestBody(BaseModel):
    """A request body: unknown fields are refused, and so is text that is not valid Unicode."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        where = _lone_surrogate(data, "")
        if where:
            # Not a ValueError: pydantic lets it through, and the HTTP edge answers 400 naming the field.
            raise InvalidRequestError(f"{where}: invalid Unicode (a lone surrogate)", param=where)
        return data


class _Open(BaseModel):
    """A nested object passed on to vLLM as the client wrote it (a tool's JSON schema, a tool call)."""

    model_config = ConfigDict(extra="allow")


# An assistant turn's fields that say nothing the model needs to read again.
_IGNORED_MESSAGE_FIELDS = frozenset({"annotations", "reasoning_content", "reasoning"})


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: Annotated[str, Field(max_length=_MAX_TEXT)]


class ChatMessage(BaseModel):
    # A client sends back the assistant turns it received, with their null or empty extras (the openai SDK's
    # `annotations`, vLLM's `reasoning_content`): those are taken; a set field that is not known is refused.
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Annotated[str, Field(max_length=_MAX_TEXT)] | list[TextPart] | None = ""
    name: Annotated[str | None, Field(max_length=64)] = None
    tool_calls: Annotated[list[_Open] | None, Field(max_length=128)] = None  # an assistant turn's
    tool_call_id: Annotated[str | None, Field(max_length=256)] = None  # a tool turn's answer to one
    refusal: str | None = None  # an assistant turn as the openai SDK sends it back

    @model_validator(mode="after")
    def _no_unknown_values(self) -> "ChatMessage":
        for name, value in (self.model_extra or {}).items():
            if value not in (None, "", [], {}) and name not in _IGNORED_MESSAGE_FIELDS:
                raise ValueError(f"unsupported message field {name!r}")
        return self

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts_only(cls, content: Any) -> Any:
        if isinstance(content, list):
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind != "text":
                    raise ValueError(f"only text content parts are supported, not {kind!r}")
        return content

    @model_validator(mode="after")
    def _tool_turns(self) -> "ChatMessage":
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs the tool_call_id it answers")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only an assistant message has tool_calls")
        return self

    def passed_on(self) -> dict[str, Any]:
        """What vLLM gets of this turn besides its role and text: tool calls, the call a tool answers."""
        return self.model_dump(include={"name", "tool_calls", "tool_call_id"}, exclude_none=True)

    def text(self) -> str:
        """Plain text; content parts are kept apart, one per line."""
        if isinstance(self.content, list):
            return "\n".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False
    continuous_usage_stats: bool = False


class ResponseFormat(BaseModel):
    """`json_object` or `json_schema` constrain the answer through vLLM's structured outputs."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: _Open | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> "ResponseFormat":
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("type json_schema needs a json_schema object")
        return self


class Tool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    function: _Open


class _Generation(RequestBody):
    """What Chat Completions and the legacy Completions share: the model, sampling, streaming, and
    ragserve's retrieval extensions."""

    model: Annotated[str, Field(max_length=256)] = "default"
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: Annotated[int | None, Field(ge=1, le=32768)] = None
    n: Annotated[int, Field(ge=1, le=8)] = 1
    temperature: Annotated[float | None, Field(ge=0, le=2)] = None
    top_p: Annotated[float | None, Field(gt=0, le=1)] = None
    presence_penalty: Annotated[float | None, Field(ge=-2, le=2)] = None
    frequency_penalty: Annotated[float | None, Field(ge=-2, le=2)] = None
    stop: (
        Annotated[str, Field(min_length=1, max_length=256)]
        | Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]], Field(max_length=4)]
        | None
    ) = None
    seed: Annotated[int | None, Field(ge=-_INT64, lt=_INT64)] = None
    logit_bias: Annotated[dict[str, Bias] | None, Field(max_length=300)] = None
    # vLLM's own sampling extensions.
    top_k: Annotated[int | None, Field(ge=-1, le=1_000_000)] = None
    min_p: Annotated[float | None, Field(ge=0, le=1)] = None
    min_tokens: Annotated[int | None, Field(ge=0, le=32768)] = None
    repetition_penalty: Annotated[float | None, Field(gt=0, le=2)] = None
    ignore_eos: bool | None = None
    # Accepted and not passed on: it cannot change the answer.
    user: Annotated[str | None, Field(max_length=256)] = None
    # ragserve's own: retrieval on or off, and how many blocks.
    rag: bool = True
    k: Annotated[int | None, Field(ge=0, le=20)] = None

    @field_validator("logit_bias")
    @classmethod
    def _token_ids(cls, bias: dict[str, float] | None) -> dict[str, float] | None:
        for token in bias or {}:
            if not token.isdigit():
                raise ValueError(f"keys are token ids, not {token[:20]!r}")
        return bias

    @field_validator("stream_options")
    @classmethod
    def _when_streaming(cls, options: StreamOptions | None, info: ValidationInfo) -> StreamOptions | None:
        if options is not None and not info.data.get("stream"):
            raise ValueError("stream_options needs stream: true")
        return options


class ChatRequest(_Generation):
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=200)]
    max_completion_tokens: Annotated[int | None, Field(ge=1, le=32768)] = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int | None, Field(ge=0, le=20)] = None
    response_format: ResponseFormat | None = None
    tools: Annotated[list[Tool] | None, Field(max_length=128)] = None
    tool_choice: Literal["none", "auto", "required"] | _Open | None = None
    parallel_tool_calls: bool | None = None
    # Accepted and not passed on: they cannot change the answer.
    metadata: Annotated[dict[str, str] | None, Field(max_length=16)] = None
    store: bool | None = None
    service_tier: str | None = None
    # Not fields a client sends: where retrieval reads (the Responses API's file_search tool).
    _sources: list[str] | None = PrivateAttr(default=None)
    _min_score: float = PrivateAttr(default=0.0)
    _keep_turns: bool = PrivateAttr(default=False)  # the Responses API's `truncation: "disabled"`

    def within(self, sources: list[str] | None, min_score: float = 0.0) -> "ChatRequest":
        """This request, retrieving from those documents' chunks only (their sources in the index; None: all
        the tenant's), and only blocks that score `min_score` or more (a hybrid score is in [0, 1])."""
        self._sources = sources
        self._min_score = min_score
        return self

    def keeping_turns(self, keep: bool = True) -> "ChatRequest":
        """This request, refused (400) rather than answered with its oldest turns dropped when it does not
        fit the model's context."""
        self._keep_turns = keep
        return self

    @property
    def keeps_turns(self) -> bool:
        return self._keep_turns

    @property
    def sources(self) -> list[str] | None:
        return self._sources

    @property
    def min_score(self) -> float:
        return self._min_score

    @field_validator("messages")
    @classmethod
    def _has_user_turn(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if not any(m.role == "user" for m in messages):
            raise ValueError("at least one user message is needed")
        return messages

    @field_validator("top_logprobs")
    @classmethod
    def _with_logprobs(cls, top: int | None, info: ValidationInfo) -> int | None:
        if top and not info.data.get("logprobs"):
            raise ValueError("top_logprobs needs logprobs: true")
        return top

    @property
    def question(self) -> str:
        """The last user turn's text: what the answer is checked and quoted against."""
        return next((m.text() for m in reversed(self.messages) if m.role == "user"), "")

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def must_call_tool(self) -> bool:
        """`tool_choice` is "required" or names a function: the answer is a tool call, never text."""
        return self.tool_choice == "required" or isinstance(self.tool_choice, _Open)


class CompletionRequest(_Generation):
    """The legacy Completions API (`/v1/completions`), answered as one user turn down the chat path.

    One prompt per request; `echo`, `suffix` and `best_of` above 1 are refused by name: none of them has a
    meaning for an answer built from retrieved blocks."""

    prompt: (
        Annotated[str, Field(max_length=_MAX_TEXT)]
        | Annotated[list[Annotated[str, Field(max_length=_MAX_TEXT)]], Field(min_length=1)]
    )
    logprobs: Annotated[int | None, Field(ge=0, le=20)] = None
    echo: bool = False
    suffix: Annotated[str | None, Field(max_length=0)] = None
    best_of: Annotated[int | None, Field(ge=1, le=1)] = None

    @field_validator("prompt", mode="before")
    @classmethod
    def _one_text(cls, prompt: Any) -> Any:
        if isinstance(prompt, list) and prompt and not isinstance(prompt[0], str):
            raise ValueError("token ids are not supported: send the prompt as text")
        if isinstance(prompt, list) and len(prompt) > 1:
            raise ValueError("one prompt per request: send each prompt in a request of its own")
        return prompt

    @field_validator("echo")
    @classmethod
    def _no_echo(cls, echo: bool) -> bool:
        if echo:
            raise ValueError("echo is not supported")
        return echo

    def as_chat(self) -> ChatRequest:
        """The same request as Chat Completions: the prompt as the only user turn, the fields in common as
        sent (a field left out still takes the config's default), `logprobs: N` as `top_logprobs: N`."""
        shared = self.model_dump(include=set(_Generation.model_fields), exclude_unset=True)
        prompt = self.prompt if isinstance(self.prompt, str) else self.prompt[0]
        chat: dict[str, Any] = {**shared, "messages": [{"role": "user", "content": prompt}]}
        if self.logprobs is not None:
            chat |= {"logprobs": True, "top_logprobs": self.logprobs}
        return ChatRequest.model_validate(chat)


class RetrieveRequest(RequestBody):
    query: Annotated[str, Field(min_length=1, max_length=4000)]
    k: Annotated[int, Field(ge=1, le=50)] = 5


class Citation(BaseModel):
    index: int
    source: str
    heading: str
    chunk_id: str
    score: float
    cited: bool  # the answer cites it as [n], or draws on it (attributed)
    attributed: bool  # cited by the service: the answer named no block, and its words come from this one
    text: str  # the block as the model saw it: for a preview, and for checking an answer against it
