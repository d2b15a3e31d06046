import io
import zipfile

import docx
import pytest

from ragserve.errors import UnsupportedMediaError
from ragserve.ingest.sniffing import sniff_format

PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n"
OLE2 = "a legacy or password-protected Office file (OLE2)"


def _package(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        for name in names:
            package.writestr(name, "<x/>")
    return buffer.getvalue()


def _word() -> bytes:
    buffer = io.BytesIO()
    docx.Document().save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "filename", "expected"),
    [
        (PDF, "guide.pdf", "pdf"),
        (PDF, "upload", "pdf"),
        (_package("[Content_Types].xml", "ppt/presentation.xml"), "deck.pptx", "pptx"),
        (_package("[Content_Types].xml", "xl/workbook.xml"), "book.XLSX", "xlsx"),
        (b"\xef\xbb\xbf  \n<!DOCTYPE html><p>hi</p>", "page.html", "html"),
        (b"<html><body>hi</body></html>", "page", "html"),
        (b"<h1>Plans</h1><p>Two plans.</p>", "plans.htm", "html"),
        ("# Caf\u00e9\n\nMenu".encode(), "menu.md", "markdown"),
        (b"# notes", "notes.markdown", "markdown"),
        (b"plain words", "notes.txt", "text"),
        (b"plain words", "README", "text"),
    ],
)
def test_the_format_comes_from_the_bytes(data: bytes, filename: str, expected: str) -> None:
    assert sniff_format(data, filename) == expected


def test_a_real_word_file_is_a_docx() -> None:
    assert sniff_format(_word(), "letter.docx") == "docx"


def test_a_truncated_office_file_keeps_its_name_so_indexing_reports_it() -> None:
    data = _word()
    assert sniff_format(data[: len(data) // 2], "letter.docx") == "docx"


@pytest.mark.parametrize(
    ("data", "filename", "message", "detected"),
    [
        (PDF, "x.docx", "'x.docx' is named as a Word document but holds a PDF", "pdf"),
        (_word(), "x.pdf", "'x.pdf' is named as a PDF but holds a Word document", "docx"),
        (b"just text", "x.html", "'x.html' is named as HTML but holds plain text", "text"),
        (b"<!doctype html><p>hi", "x.md", "'x.md' is named as Markdown but holds HTML", "html"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "logo.png", "unsupported type: a PNG image", "a PNG image"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", "old.doc", "OLE2", OLE2),
        (_package("notes.txt"), "notes.zip", r"ZIP archive \(not a Word, PowerPoint or Excel file\)", "zip"),
        (_word()[:100], "archive.zip", "a corrupt ZIP archive", "zip"),
        (b"text\x00with NUL", "a.txt", "binary data", "binary"),
        ("caf\u00e9".encode("latin-1"), "a.txt", "text that is not UTF-8", "binary"),
        (b"  \n", "a.txt", "an empty file", "empty"),
    ],
)  # fmt: skip
def test_unsupported_or_mismatched_bytes_are_refused_naming_what_they_are(
    data: bytes, filename: str, message: str, detected: str
) -> None:
    with pytest.raises(UnsupportedMediaError, match=message) as refused:
        sniff_format(data, filename)
    assert refused.value.detected == detected
