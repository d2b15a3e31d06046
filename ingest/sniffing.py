"""A document's format from its bytes, for uploads, where the name is the client's word and nothing more.

The bytes decide; the name may only choose among what bytes cannot tell apart (Markdown from plain text, an
HTML fragment from text), and a name that says another format than the bytes is refused, naming both.
A ZIP whose directory cannot be read is taken at its name's word when that is an Office name: a truncated
.docx is a document that fails to index with its reason, not a file of an unknown type.
"""

import io
import zipfile
from pathlib import PurePosixPath

from ragserve.errors import UnsupportedMediaError
from ragserve.ingest.office import OFFICE_FORMATS
from ragserve.ingest.sources import FORMATS

__all__ = ["sniff_format"]

_NAMES = {
    "markdown": "Markdown",
    "text": "plain text",
    "html": "HTML",
    "pdf": "a PDF",
    **{fmt: f"a {kind}" for fmt, (_, kind) in OFFICE_FORMATS.items()},
}
# Formats ragserve does not read, named so the refusal says what the file is.
_MAGIC = [
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy or password-protected Office file (OLE2)"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"{\\rtf", "an RTF document"),
    (b"\x7fELF", "an ELF executable"),
]
_OFFICE_FOLDERS = {"word/": "docx", "ppt/": "pptx", "xl/": "xlsx"}
_HTML_STARTS = (b"<!doctype html", b"<html")


def sniff_format(data: bytes, filename: str) -> str:
    """The format of `data` (a key of ingest.sources.FORMATS' values); raises UnsupportedMediaError naming
    what the bytes are when that is no supported format, or not the one the file's name says."""
    named = FORMATS.get(PurePosixPath(filename).suffix.lower())
    found = _from_bytes(data, named)
    if named is not None and found != named:
        raise UnsupportedMediaError(
            f"{filename!r} is named as {_NAMES[named]} but holds {_NAMES[found]}", detected=found
        )
    return found


def _from_bytes(data: bytes, named: str | None) -> str:
    if not data.strip():
        raise UnsupportedMediaError("an empty file", detected="empty")
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return _zip_format(data, named)
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise UnsupportedMediaError(f"unsupported type: {what}", detected=what)
    return _text_format(data, named)


def _zip_format(data: bytes, named: str | None) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            names = package.namelist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        if named in OFFICE_FORMATS:
            return named
        raise UnsupportedMediaError("unsupported type: a corrupt ZIP archive", detected="zip") from None
    if "[Content_Types].xml" in names:
        for folder, fmt in _OFFICE_FOLDERS.items():
            if any(name.startswith(folder) for name in names):
                return fmt
    what = "a ZIP archive (not a Word, PowerPoint or Excel file)"
    raise UnsupportedMediaError(f"unsupported type: {what}", detected="zip")


def _text_format(data: bytes, named: str | None) -> str:
    head = data[:8192]
    if b"\x00" in head:
        raise UnsupportedMediaError("unsupported type: binary data", detected="binary")
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnsupportedMediaError("unsupported type: text that is not UTF-8", detected="binary") from None
    start = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if start.startswith(_HTML_STARTS):
        return "html"
    # An HTML fragment ("<h1>Plans</h1>...") has no signature; under an HTML name, a leading tag will do.
    if named == "html" and start.startswith(b"<"):
        return "html"
    return "markdown" if named == "markdown" else "text"
