"""The small files ragserve keeps beside its data: TOML read with clear errors, files and folders put in place
durably.

A rename is atomic, but only what reached the disk survives a power cut: the new file's bytes are fsynced
before the rename, and the folder holding the new name is fsynced after it. Without the first, a crash can
leave the new name on an empty file; without the second, the old file can come back.
"""

import contextlib
import errno
import os
import secrets
import stat
import tomllib
from pathlib import Path
from typing import Any

from ragserve.errors import RagserveError

__all__ = ["move_folder_durably", "read_toml", "sync_folder", "write_atomically"]


def read_toml(path: Path, error: type[RagserveError]) -> dict[str, Any]:
    """The file's table; an unreadable file or bad TOML (duplicate keys included) is `error`, naming it."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: invalid TOML: {exc}") from exc


def write_atomically(path: Path, content: str | bytes) -> None:
    """Replaces path's content (text as UTF-8) so that readers, and a crash, see the old file or the new one,
    never a mix; the file keeps its permissions."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    scratch = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            with contextlib.suppress(FileNotFoundError):
                os.fchmod(out.fileno(), stat.S_IMODE(path.stat().st_mode))
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(scratch, path)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    sync_folder(path.parent)


def move_folder_durably(staged: Path, target: Path) -> None:
    """Renames a finished folder to target once everything in it is on disk, so a crash leaves all of it or
    none; raises OSError as a rename does (target exists and is not empty, say)."""
    for dirpath, _dirnames, filenames in os.walk(staged):
        for name in filenames:
            _sync(Path(dirpath) / name, os.O_RDONLY)
        sync_folder(Path(dirpath))
    staged.rename(target)
    sync_folder(target.parent)


def sync_folder(folder: Path) -> None:
    """Makes the names in a folder (a rename into it, say) durable."""
    _sync(folder, os.O_RDONLY | os.O_DIRECTORY)


def _sync(path: Path, flags: int) -> None:
    fd = os.open(path, flags | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some file systems cannot sync a folder, or this kind of file; there is nothing more to do there.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)
