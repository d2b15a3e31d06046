"""The small files ragserve keeps beside its data: TOML read with clear errors, text written atomically."""

import os
import tomllib
from pathlib import Path
from typing import Any

from ragserve.errors import RagserveError

__all__ = ["read_toml", "write_atomically"]


def read_toml(path: Path, error: type[RagserveError]) -> dict[str, Any]:
    """The file's table; an unreadable file or bad TOML (duplicate keys included) is `error`, naming it."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: invalid TOML: {exc}") from exc


def write_atomically(path: Path, text: str) -> None:
    """Written to a scratch file beside it and renamed over it, so a reader never sees half a file."""
    scratch = path.with_name(f"{path.name}.{os.getpid()}")
    scratch.write_text(text)
    scratch.replace(path)
