"""What a client says about one answer (`POST /v1/feedback`), and the record stored for it.

The body names no tenant: the bearer key does. Every string and list is bounded, so one record stays small
beside the tenant's cap (RAGSERVE_FEEDBACK_MAX_BYTES), and unknown fields are refused rather than dropped.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ragserve.service.schemas import RequestBody

__all__ = ["FeedbackCitation", "FeedbackMessage", "FeedbackRecord", "FeedbackRequest", "Rating"]

Rating = Literal["up", "down"]


class FeedbackMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: Annotated[str, Field(max_length=16_000)]


class FeedbackCitation(BaseModel):
    """A block the answer was given, as the chat response listed it (its `text` is not sent back)."""

    model_config = ConfigDict(extra="forbid")

    index: Annotated[int, Field(ge=1, le=1000)]
    source: Annotated[str, Field(max_length=1000)]
    heading: Annotated[str, Field(max_length=1000)] = ""
    cited: bool


class FeedbackRequest(RequestBody):
    rating: Rating
    comment: Annotated[str | None, Field(max_length=2000)] = None
    # The conversation up to and including the question the answer replies to.
    messages: Annotated[list[FeedbackMessage], Field(min_length=1, max_length=50)]
    answer: Annotated[str, Field(max_length=32_000)]
    model: Annotated[str | None, Field(max_length=200)] = None  # the served model name that answered
    citations: Annotated[list[FeedbackCitation], Field(default_factory=list, max_length=50)]
    response_id: Annotated[str | None, Field(max_length=200)] = None  # the chat completion's id

    @field_validator("messages")
    @classmethod
    def _ends_with_the_question(cls, messages: list[FeedbackMessage]) -> list[FeedbackMessage]:
        if messages[-1].role != "user":
            raise ValueError("the last message must be the user's question that the answer replies to")
        if not messages[-1].content.strip():
            raise ValueError("the last message, the question, is blank")
        return messages

    @property
    def question(self) -> str:
        return self.messages[-1].content


class FeedbackRecord(FeedbackRequest):
    """One stored line: the body, with the id it was given, when, and the tenant whose key sent it."""

    id: Annotated[str, Field(min_length=1, max_length=100)]
    created_at: str
    tenant: str
