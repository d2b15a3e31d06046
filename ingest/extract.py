"""A document's bytes to text: Markdown and plain text as they are; HTML, PDF, Word, PowerPoint and Excel
converted."""

import io
import logging

from pypdf import PdfReader
from pypdf.errors import PdfReadError

from ragserve.errors import SkipDocument
from ragserve.ingest.html_text import html_to_markdown
from ragserve.ingest.office import OFFICE_FORMATS, office_to_markdown

__all__ = ["extract_text"]


log = logging.getLogger("ragserve.ingest")


def extract_text(fmt: str, data: bytes) -> str:
    """Returns the document's text (Markdown-shaped for HTML and Office files), or raises SkipDocument with
    the reason."""
    try:
        if fmt == "pdf":
            text = _pdf_text(data)
        elif fmt in OFFICE_FORMATS:
            text = office_to_markdown(fmt, data)
        else:
            text = _convert(fmt, _decode(data))
    except SkipDocument:
        raise
    except Exception as exc:
        # A parser's own bug, on one strange file, must cost that file only, never the tenant's whole run.
        log.warning("the %s parser failed on a document", fmt, exc_info=True)
        raise SkipDocument(f"the {fmt} parser failed: {type(exc).__name__}: {str(exc)[:200]}") from exc
    if not text.strip():
        raise SkipDocument("no text in the document")
    return text


def _convert(fmt: str, text: str) -> str:
    return html_to_markdown(text) if fmt == "html" else text


def _decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise SkipDocument("binary file (NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SkipDocument(f"not UTF-8 (invalid byte at offset {exc.start})") from exc


def _pdf_text(data: bytes) -> str:
    # pypdf logs every recoverable oddity of a PDF; the skip reason is what users need.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise SkipDocument("encrypted PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
    except SkipDocument:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        raise SkipDocument(f"unreadable PDF: {exc}") from exc
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise SkipDocument("PDF has no extractable text (scanned images?)")
    return text
