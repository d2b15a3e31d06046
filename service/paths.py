"""Path-like fields of a request (a docs folder, an upload's name), checked before anything uses them.

A path from a client is refused, as a 400 naming its field, when it holds what no honest path needs and what
breaks or fools what opens it: a NUL (the OS call fails on it), any other control character, or a `..` part
(a way out of a folder the caller owns). Text that is not UTF-8 (a lone surrogate, as JSON can carry one)
pydantic's `str` refuses already. Whether an absolute path is one the caller may name is the route's
question: it compares the path with what the tenant owns.
"""

from pathlib import PurePosixPath
from typing import Annotated

from pydantic import AfterValidator, Field

__all__ = ["MAX_PATH_CHARS", "RequestPath", "checked_path"]

MAX_PATH_CHARS = 4096  # Linux's PATH_MAX


def checked_path(value: str) -> str:
    """The path as sent, or ValueError saying what is wrong with it."""
    if "\x00" in value:
        raise ValueError("a NUL character is not allowed in a path")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("a control character is not allowed in a path")
    if ".." in PurePosixPath(value.replace("\\", "/")).parts:
        raise ValueError("a '..' part is not allowed in a path")
    return value


RequestPath = Annotated[str, Field(min_length=1, max_length=MAX_PATH_CHARS), AfterValidator(checked_path)]
