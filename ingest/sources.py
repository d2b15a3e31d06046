"""A tenant's docs folder: which files it holds, their ids and content hashes."""

import hashlib
import os
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
}


@dataclass(frozen=True)
class SourceFile:
    """One document: its id is its path relative to the docs folder, in POSIX form."""

    doc_id: str
    path: Path
    format: str
    sha256: str


@dataclass(frozen=True)
class LoadedFile:
    """A document's bytes as they were read, and their hash."""

    source: SourceFile
    data: bytes
    sha256: str


@dataclass(frozen=True)
class Skipped:
    """A file left out of the index, and why."""

    path: str
    reason: str


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
    files: list[SourceFile] = []
    skipped: list[Skipped] = []
    seen_any = False
    for path in _walk(docs_dir):
        seen_any = True
        doc_id = path.relative_to(docs_dir).as_posix()
        fmt = FORMATS.get(path.suffix.lower())
        if fmt is None:
            skipped.append(Skipped(doc_id, f"unsupported file type {path.suffix or '(none)'!r}"))
            continue
        try:
            digest = _hash_file(path, max_bytes)
        except SkipDocument as skip:
            skipped.append(Skipped(doc_id, skip.reason))
            continue
        files.append(SourceFile(doc_id, path, fmt, digest))
    if not seen_any:
        raise DocsDirError(f"{docs_dir}: the folder holds no documents")
    return ScanResult(files, skipped)


def read_source(source: SourceFile, max_bytes: int) -> LoadedFile:
    """Reads a document again for indexing; the hash returned is of the bytes actually read."""
    data = _read_bytes(source.path, max_bytes)
    return LoadedFile(source, data, hashlib.sha256(data).hexdigest())


def _walk(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=None, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath) / name for name in sorted(filenames) if not name.startswith("."))
    return found


def _hash_file(path: Path, max_bytes: int) -> str:
    return hashlib.sha256(_read_bytes(path, max_bytes)).hexdigest()


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise SkipDocument(f"over the size cap ({size} bytes > {max_bytes})")
        if not path.is_file():
            raise SkipDocument("not a regular file")
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise SkipDocument(f"unreadable: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise SkipDocument(f"over the size cap (> {max_bytes} bytes)")
    if not data.strip():
        raise SkipDocument("empty file")
    return data
