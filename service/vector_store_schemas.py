"""Request bodies of the Files and Vector Stores APIs, as OpenAI's: every field a client may send is named
here with its bounds, and any other is a 400 naming it (schemas.py's RequestBody)."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ragserve.errors import InvalidRequestError
from ragserve.service.attribute_filters import MAX_DEPTH, AttributeFilter, Attributes, CompoundFilter
from ragserve.service.schemas import RequestBody

__all__ = [
    "AttachFile",
    "AttachFiles",
    "CreateVectorStore",
    "SearchRequest",
    "UpdateAttributes",
    "UpdateVectorStore",
    "check_filters",
]

FileId = Annotated[str, Field(min_length=1, max_length=64)]
Metadata = Annotated[
    dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]], Field(max_length=16)
]
MAX_FILES = 500  # in one request


class _AutoChunking(BaseModel):
    """The only chunking a store takes: ragserve chunks each document once, by its settings, for all."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["auto"]


def _no_expiry(value: Any) -> Any:
    if value is not None:
        raise InvalidRequestError(
            "expires_after: vector stores do not expire in ragserve; delete one when done",
            param="expires_after",
        )
    return value


def check_filters(value: AttributeFilter | None) -> AttributeFilter | None:
    if isinstance(value, CompoundFilter) and value.depth() > MAX_DEPTH:
        raise InvalidRequestError(f"filters: nested over {MAX_DEPTH} deep", param="filters")
    return value


class CreateVectorStore(RequestBody):
    name: Annotated[str, Field(max_length=256)] = ""
    file_ids: Annotated[list[FileId], Field(max_length=MAX_FILES)] = Field(default_factory=list)
    metadata: Metadata | None = None
    description: Annotated[str, Field(max_length=512)] | None = None
    chunking_strategy: _AutoChunking | None = None
    expires_after: Any = None

    _expiry = field_validator("expires_after")(_no_expiry)


class UpdateVectorStore(RequestBody):
    name: Annotated[str, Field(max_length=256)] | None = None
    metadata: Metadata | None = None
    expires_after: Any = None

    _expiry = field_validator("expires_after")(_no_expiry)


class AttachFile(RequestBody):
    file_id: FileId
    attributes: Attributes | None = None
    chunking_strategy: _AutoChunking | None = None


class AttachFiles(RequestBody):
    """A batch: `file_ids` sharing `attributes`, or `files` each with its own (not both)."""

    file_ids: Annotated[list[FileId], Field(min_length=1, max_length=MAX_FILES)] | None = None
    files: Annotated[list[AttachFile], Field(min_length=1, max_length=MAX_FILES)] | None = None
    attributes: Attributes | None = None
    chunking_strategy: _AutoChunking | None = None

    def pairs(self) -> list[tuple[str, dict[str, str | float | bool]]]:
        if (self.file_ids is None) == (self.files is None):
            raise InvalidRequestError("give file_ids or files, one of them", param="file_ids")
        if self.files is not None:
            return [(f.file_id, dict(f.attributes or {})) for f in self.files]
        return [(i, dict(self.attributes or {})) for i in self.file_ids or []]


class UpdateAttributes(RequestBody):
    attributes: Attributes | None


class _RankingOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ranker: Literal["none", "auto", "default-2024-11-15"] = "auto"
    score_threshold: Annotated[float, Field(ge=0, le=1)] = 0.0


class SearchRequest(RequestBody):
    query: (
        Annotated[str, Field(max_length=4096)]
        | Annotated[list[Annotated[str, Field(max_length=4096)]], Field(min_length=1, max_length=8)]
    )
    max_num_results: Annotated[int, Field(ge=1, le=50)] = 10
    filters: AttributeFilter | None = None
    ranking_options: _RankingOptions | None = None
    rewrite_query: bool = False

    _filters = field_validator("filters")(check_filters)

    @field_validator("rewrite_query")
    @classmethod
    def _no_rewrite(cls, value: bool) -> bool:
        if value:
            raise InvalidRequestError(
                "rewrite_query: ragserve searches the query as written (hybrid dense and BM25)",
                param="rewrite_query",
            )
        return value

    def queries(self) -> list[str]:
        return [self.query] if isinstance(self.query, str) else list(self.query)
