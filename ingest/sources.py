"""A tenant's docs folder: which files it holds, their ids and content hashes.

Nothing outside the folder is ever read: symlinks are reported as skipped, never followed, and each file is
opened one path step at a time with O_NOFOLLOW, so a file or folder swapped for a symlink after the scan
cannot lead out of it either.
"""

import errno
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ragserve.errors import DocsDirError, SkipDocument

__all__ = ["FORMATS", "LoadedFile", "ScanResult", "Skipped", "SourceFile", "read_source", "scan_folder"]

FORMATS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
}

# Every open below the docs folder: a name swapped for a symlink after its check fails instead of leading out.
_BELOW = os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class SourceFile:
    """One document: its id is its path relative to the docs folder, in POSIX form."""

    doc_id: str
    root: Path
    format: str
    sha256: str

    @property
    def path(self) -> Path:
        return self.root / self.doc_id


@dataclass(frozen=True)
class LoadedFile:
    """A document's bytes as they were read, and their hash."""

    source: SourceFile
    data: bytes
    sha256: str


@dataclass(frozen=True)
class Skipped:
    """A file left out of the index, and why; keeps_old_version says whether a version indexed earlier stays
    searchable (a symlink's does not: it may hold text from outside the folder)."""

    path: str
    reason: str
    keeps_old_version: bool = True


@dataclass(frozen=True)
class ScanResult:
    files: list[SourceFile]
    skipped: list[Skipped]


def scan_folder(docs_dir: Path, max_bytes: int) -> ScanResult:
    """Lists and hashes the supported files under docs_dir; hidden files and folders are ignored."""
    if not docs_dir.exists():
        raise DocsDirError(f"{docs_dir}: no such folder")
    if not docs_dir.is_dir():
        raise DocsDirError(f"{docs_dir}: not a folder")
    real_root = docs_dir.resolve()
    files: list[SourceFile] = []
    skipped: list[Skipped] = []
    seen_any = False
    for path in _walk(docs_dir):
        seen_any = True
        doc_id = path.relative_to(docs_dir).as_posix()
        if path.is_symlink():
            skipped.append(Skipped(doc_id, _symlink_reason(path, real_root), keeps_old_version=False))
            continue
        fmt = FORMATS.get(path.suffix.lower())
        if fmt is None:
            skipped.append(Skipped(doc_id, f"unsupported file type {path.suffix or '(none)'!r}"))
            continue
        try:
            digest = hashlib.sha256(_read_bytes(docs_dir, doc_id, max_bytes)).hexdigest()
        except SkipDocument as skip:
            skipped.append(Skipped(doc_id, skip.reason))
            continue
        files.append(SourceFile(doc_id, docs_dir, fmt, digest))
    if not seen_any:
        raise DocsDirError(f"{docs_dir}: the folder holds no documents")
    return ScanResult(files, skipped)


def read_source(source: SourceFile, max_bytes: int) -> LoadedFile:
    """Reads a document again for indexing; the hash returned is of the bytes actually read."""
    data = _read_bytes(source.root, source.doc_id, max_bytes)
    return LoadedFile(source, data, hashlib.sha256(data).hexdigest())


def _walk(root: Path) -> list[Path]:
    """Every visible file, and every visible symlink (to a file or a folder), in a stable order."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        folder = Path(dirpath)
        visible = [d for d in dirnames if not d.startswith(".")]
        links = {d for d in visible if (folder / d).is_symlink()}
        dirnames[:] = sorted(d for d in visible if d not in links)
        names = [*links, *(f for f in filenames if not f.startswith("."))]
        found.extend(folder / name for name in sorted(names))
    return found


def _symlink_reason(link: Path, real_root: Path) -> str:
    try:
        target = link.resolve(strict=True)
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop, before Python 3.13
        return "broken symlink or symlink loop (symlinks are not followed)"
    if target != real_root and real_root not in target.parents:
        kind = "folder" if target.is_dir() else "file"
        return f"symlink to a {kind} outside the docs folder (symlinks are not followed)"
    return "symlink within the docs folder (symlinks are not followed; index the target under its own name)"


def _read_bytes(root: Path, doc_id: str, max_bytes: int) -> bytes:
    try:
        fd = _open_inside(root, doc_id)
        with os.fdopen(fd, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise SkipDocument(f"over the size cap ({size} bytes > {max_bytes})")
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SkipDocument("a symlink on its path (symlinks are not followed)") from exc
        raise SkipDocument(f"unreadable: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise SkipDocument(f"over the size cap (> {max_bytes} bytes)")
    if not data.strip():
        raise SkipDocument("empty file")
    return data


def _open_inside(root: Path, doc_id: str) -> int:
    """Opens root/doc_id for reading, following no symlink below root; only a regular file is opened."""
    *folders, name = doc_id.split("/")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for folder in folders:
            _refuse_symlink(folder, fd)
            inner = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | _BELOW, dir_fd=fd)
            os.close(fd)
            fd = inner
        # A FIFO or device is refused before it is opened: opening one can block or have side effects.
        if not stat.S_ISREG(_refuse_symlink(name, fd)):
            raise SkipDocument("not a regular file")
        file_fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | _BELOW, dir_fd=fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(file_fd).st_mode):  # swapped between the check and the open
        os.close(file_fd)
        raise SkipDocument("not a regular file")
    return file_fd


def _refuse_symlink(name: str, dir_fd: int) -> int:
    """The entry's mode; a symlink is an ELOOP error, as O_NOFOLLOW would make it."""
    mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    if stat.S_ISLNK(mode):
        raise OSError(errno.ELOOP, "a symlink")
    return mode
