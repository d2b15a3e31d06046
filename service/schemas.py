"""Request and response bodies of the OpenAI-compatible API, plus ragserve's retrieval extensions."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ChatMessage", "ChatRequest", "Citation", "RetrieveRequest"]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict[str, Any]] | None = ""

    def text(self) -> str:
        """Plain text; OpenAI's content-part lists are joined, their non-text parts dropped."""
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    # Unknown OpenAI fields (user, n, seed, ...) are accepted and not forwarded.
    model_config = ConfigDict(extra="allow")

    model: str = "default"
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=200)]
    stream: bool = False
    max_tokens: Annotated[int | None, Field(ge=1, le=4096)] = None
    max_completion_tokens: Annotated[int | None, Field(ge=1, le=4096)] = None
    temperature: Annotated[float | None, Field(ge=0, le=2)] = None
    top_p: Annotated[float | None, Field(gt=0, le=1)] = None
    stop: str | list[str] | None = None
    seed: int | None = None
    rag: bool = True
    k: Annotated[int | None, Field(ge=0, le=20)] = None

    @field_validator("messages")
    @classmethod
    def _ends_with_user(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if not any(m.role == "user" for m in messages):
            raise ValueError("at least one user message is needed")
        return messages


class RetrieveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

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
