"""Domain errors. The CLI and the HTTP service translate these at their edges; nothing else does."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi.exceptions import RequestValidationError
    from pydantic import ValidationError

__all__ = [
    "AdapterInvalidError",
    "AdapterNotFoundError",
    "AuthError",
    "ConfigError",
    "ConflictError",
    "DatasetError",
    "DocsDirError",
    "DocumentNotFoundError",
    "FeedbackFullError",
    "FeedbackNotFoundError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "InvalidRequestError",
    "InvalidTenantError",
    "ModelNotAllowedError",
    "ModelNotFoundError",
    "PageNotFoundError",
    "PayloadTooLargeError",
    "PromptTooLongError",
    "QAFileError",
    "QueryFileError",
    "RagserveError",
    "ResponseNotFoundError",
    "ShardingError",
    "SkipDocument",
    "StateUnavailableError",
    "StoreFormatError",
    "StoreLockedError",
    "StoreUnavailableError",
    "TenantNotFoundError",
    "TooManyRequestsError",
    "UnsupportedMediaError",
    "UpstreamError",
    "UpstreamRejectedError",
    "VectorStoreNotFoundError",
    "validation_problems",
]


class RagserveError(Exception):
    """Base of every error ragserve raises on purpose; its message is meant for the user."""


class ConfigError(RagserveError):
    """A setting, from the environment or a config file, is invalid."""


class DocsDirError(RagserveError):
    """The docs folder is missing, not a folder, holds no files, or is not the tenant's configured one."""


class InvalidTenantError(RagserveError):
    """A tenant name is not of the allowed form."""


class ModelNotFoundError(RagserveError):
    """An embedding model is neither a packaged model nor a local model folder."""


class IndexNotFoundError(RagserveError):
    """Nothing has been indexed yet."""


class IndexMismatchError(RagserveError):
    """The index was built with another embedding model or other chunking settings."""


class StoreLockedError(RagserveError):
    """The embedded Qdrant store is open in another process."""


class StoreFormatError(RagserveError):
    """The data dir holds an embedded store of the kind the settings do not name."""


class StoreUnavailableError(RagserveError):
    """The Qdrant server cannot be reached."""


class ShardingError(RagserveError):
    """Custom sharding is off where a command needs it, a collection's sharding method is not the setting's,
    or a tenant's promotion to a shard of its own cannot finish."""


class TenantNotFoundError(RagserveError):
    """The index holds nothing for a tenant that a command needs it to hold."""


class QueryFileError(RagserveError):
    """A --queries file is missing or has a malformed line."""


class QAFileError(RagserveError):
    """A labelled-questions file (or its set-ups file) is missing or has a bad line; the message names it."""


class SkipDocument(RagserveError):  # noqa: N818 - it is a signal, named for what the caller does with it
    """A document cannot be indexed; the run goes on without it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AuthError(RagserveError):
    """A request has no API key, or one no tenant owns."""


class ModelNotAllowedError(RagserveError):
    """A request names a model or adapter its tenant may not use."""


class PageNotFoundError(RagserveError):
    """A path under the playground that is none of its files."""


class InvalidRequestError(RagserveError):
    """A request the client must change: `param` names the offending field (OpenAI's convention), `code` is
    a machine-readable kind where clients key on one."""

    code: str | None = None

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.code = code or type(self).code


class PromptTooLongError(InvalidRequestError):
    """The prompt does not fit in the model's context, even with no retrieved context."""

    code = "context_length_exceeded"


class UpstreamError(RagserveError):
    """vLLM or Qdrant cannot be reached or failed."""


class UpstreamRejectedError(InvalidRequestError):
    """vLLM refused the request as the client's error (a 4xx): the client must change it, not retry it."""


class TooManyRequestsError(RagserveError):
    """The service is at its concurrency limit."""

    def __init__(self, retry_after_s: int, whose: str = "the service's") -> None:
        super().__init__(f"too many requests in flight ({whose} limit); retry in {retry_after_s}s")
        self.retry_after_s = retry_after_s


class AdapterNotFoundError(RagserveError):
    """No adapter of that name, or no such version of it, is in the registry."""


class AdapterInvalidError(RagserveError):
    """An adapter fails validation (type, base model, rank, modules, shapes, file, name or size)."""


class DatasetError(RagserveError):
    """A training dataset or its card is missing or has bad lines; the message names each one."""


class FeedbackFullError(RagserveError):
    """A tenant's stored feedback has reached RAGSERVE_FEEDBACK_MAX_BYTES: nothing more is taken until an
    operator exports and clears it (`ragserve feedback export --clear`), so a retry alone does not help."""


class ConflictError(RagserveError):
    """A request would create what exists already (a tenant of that name)."""


class DocumentNotFoundError(RagserveError):
    """No document of that id is the caller's tenant's (another tenant's is not found either)."""


class VectorStoreNotFoundError(RagserveError):
    """No vector store of that id is the caller's tenant's, or no such batch or file in it."""


class ResponseNotFoundError(InvalidRequestError):
    """No stored response of that id is the caller's tenant's (404); as a `previous_response_id`, code
    `previous_response_not_found`."""


class PayloadTooLargeError(RagserveError):
    """An upload over its size limit."""


class StateUnavailableError(RagserveError):
    """The state database (SQLite in the data dir, or PostgreSQL) cannot be reached."""


class FeedbackNotFoundError(RagserveError):
    """No feedback is stored for a tenant, or none of its stored lines can be read."""


def validation_problems(exc: "ValidationError | RequestValidationError") -> str:
    """pydantic's complaints (or FastAPI's, about a request) as one line, each with the dotted name of the
    value it is about (none for a check of several values together)."""
    return "; ".join(
        ": ".join(part for part in (".".join(map(str, e.get("loc", ()))), e.get("msg", "invalid")) if part)
        for e in exc.errors()
    )


class UnsupportedMediaError(RagserveError):
    """A document's bytes are none of the supported formats, or not the format its name says; `detected`
    names what the bytes are."""

    def __init__(self, message: str, detected: str) -> None:
        super().__init__(message)
        self.detected = detected
