"""Domain errors. The CLI and the HTTP service translate these at their edges; nothing else does."""

__all__ = [
    "ConfigError",
    "DocsDirError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "InvalidTenantError",
    "ModelNotFoundError",
    "QueryFileError",
    "RagserveError",
    "SkipDocument",
    "StoreLockedError",
    "StoreUnavailableError",
]


class RagserveError(Exception):
    """Base of every error ragserve raises on purpose; its message is meant for the user."""


class ConfigError(RagserveError):
    """A setting, from the environment or a config file, is invalid."""


class DocsDirError(RagserveError):
    """The docs folder is missing, not a folder, or holds no files."""


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


class StoreUnavailableError(RagserveError):
    """The Qdrant server cannot be reached."""


class QueryFileError(RagserveError):
    """A --queries file is missing or has a malformed line."""


class SkipDocument(RagserveError):  # noqa: N818 - it is a signal, named for what the caller does with it
    """A document cannot be indexed; the run goes on without it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
