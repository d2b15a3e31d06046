"""Word, PowerPoint and Excel files to Markdown-shaped text, with their headings, through their own libraries.

Word goes through mammoth to HTML (its heading styles become h1-h6), then through the HTML path; a slide's
title and a sheet's name become a heading each, so chunks and citations name the slide or the sheet.
No converter reads the package before its central directory has been checked: the sizes it declares cap what
Python's zipfile will ever inflate (a member that inflates past its declared size fails its CRC check), so the
sum of those sizes bounds the memory a zip bomb can take.
"""

import io
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

from ragserve.errors import SkipDocument
from ragserve.ingest.html_text import html_to_markdown

if TYPE_CHECKING:
    from pptx.shapes.base import BaseShape
    from pptx.slide import Slide

__all__ = ["MAX_PARTS", "MAX_UNPACKED_BYTES", "OFFICE_FORMATS", "office_to_markdown"]

# Five times the default RAGSERVE_MAX_FILE_BYTES (20 MiB). A real 20 MiB deck is mostly images, which do not
# grow when unpacked; 100 MiB of XML already costs python-pptx or mammoth about a GiB to parse.
MAX_UNPACKED_BYTES = 100 * 1024 * 1024
MAX_PARTS = 10_000

# The part each kind of package must hold, and the name users know it by.
OFFICE_FORMATS = {
    "docx": ("word/document.xml", "Word document"),
    "pptx": ("ppt/presentation.xml", "PowerPoint deck"),
    "xlsx": ("xl/workbook.xml", "Excel workbook"),
}
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Word's Title style is not in mammoth's default map; it is the document's top heading.
_STYLE_MAP = "p[style-name='Title'] => h1:fresh\np[style-name='Subtitle'] => h2:fresh"


def office_to_markdown(fmt: str, data: bytes) -> str:
    """Returns the document's text, headings as Markdown headings; raises SkipDocument with the reason."""
    part, kind = OFFICE_FORMATS[fmt]
    _check_package(data, part, kind)
    try:
        with warnings.catch_warnings():
            # openpyxl warns about styles and extensions it ignores; the text is what is indexed.
            warnings.simplefilter("ignore")
            return {"docx": _docx, "pptx": _pptx, "xlsx": _xlsx}[fmt](data)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, EOFError) as exc:
        raise SkipDocument(f"unreadable {kind}: {type(exc).__name__}: {str(exc)[:200]}") from exc


def _check_package(data: bytes, part: str, kind: str) -> None:
    if data.startswith(_OLE2):
        raise SkipDocument(
            f"not an Office Open XML {kind}: a password-protected or legacy binary Office file"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            members = package.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise SkipDocument(f"unreadable {kind}: not a ZIP package (truncated or corrupt): {exc}") from exc
    if len(members) > MAX_PARTS:
        raise SkipDocument(f"{kind} holds {len(members)} parts (the limit is {MAX_PARTS})")
    unpacked = sum(member.file_size for member in members)
    if unpacked > MAX_UNPACKED_BYTES:
        raise SkipDocument(f"{kind} unpacks to {unpacked} bytes (the limit is {MAX_UNPACKED_BYTES})")
    if part not in {member.filename for member in members}:
        raise SkipDocument(f"not a {kind}: the package has no {part}")


# Each library is imported on first use: together they add about half a second to every command's start.


def _docx(data: bytes) -> str:
    import mammoth

    # Images are not inlined as base64 (only their alt text could be indexed), and a document that links
    # files outside itself (a path on this server) never has them read.
    result = mammoth.convert_to_html(
        io.BytesIO(data),
        style_map=_STYLE_MAP,
        convert_image=mammoth.images.img_element(lambda _: {}),
        external_file_access=False,
    )
    return html_to_markdown(str(result.value))


def _pptx(data: bytes) -> str:
    from pptx import Presentation

    deck = Presentation(io.BytesIO(data))
    return "\n\n".join(_slide(number, slide) for number, slide in enumerate(deck.slides, start=1))


def _slide(number: int, slide: "Slide") -> str:
    title_shape = slide.shapes.title
    title = _one_line(title_shape.text_frame.text) if title_shape is not None else ""
    blocks = [f"# Slide {number}: {title}" if title else f"# Slide {number}"]
    blocks.extend(_shape_text(slide.shapes, skip=title_shape))
    if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
        notes = "\n".join(_lines(slide.notes_slide.notes_text_frame.text.splitlines()))
        if notes:
            blocks.append(f"Notes: {notes}")
    return "\n\n".join(blocks)


def _shape_text(shapes: Iterable["BaseShape"], skip: "BaseShape | None") -> Iterator[str]:
    """A block per shape, in the slide's order: a text box's paragraphs, or a table's rows, a line each."""
    from pptx.shapes.autoshape import Shape
    from pptx.shapes.graphfrm import GraphicFrame
    from pptx.shapes.group import GroupShape

    for shape in shapes:
        if skip is not None and shape.shape_id == skip.shape_id:
            continue
        if isinstance(shape, GroupShape):
            yield from _shape_text(shape.shapes, skip=None)
            continue
        if isinstance(shape, GraphicFrame) and shape.has_table:
            lines = _lines(" | ".join(_one_line(cell.text) for cell in row.cells) for row in shape.table.rows)
        elif isinstance(shape, Shape) and shape.has_text_frame:
            lines = _lines(paragraph.text for paragraph in shape.text_frame.paragraphs)
        else:
            continue
        block = "\n".join(lines)
        if block:
            yield block


def _xlsx(data: bytes) -> str:
    import openpyxl

    # read_only streams each sheet's rows; data_only reads the values formulas last computed, not formulas.
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        sheets = []
        for sheet in book.worksheets:
            # A sheet's declared size can be anything (A1:XFD1048576); padding every row to it costs time for
            # no text, so rows are read as the file holds them.
            sheet.reset_dimensions()
            sheets.append(f"# {sheet.title}\n\n" + "\n".join(_rows(sheet.iter_rows(values_only=True))))
        return "\n\n".join(sheets)
    finally:
        book.close()


def _rows(rows: Iterable[tuple[Any, ...]]) -> Iterator[str]:
    """A row a line. When the first row is all labels, every later cell is written `label: value`, so a
    chunk cut from the middle of a long sheet still says what its numbers are."""
    header: list[str] | None = None
    for row in rows:
        cells = [_cell(value) for value in row]
        while cells and not cells[-1]:
            cells.pop()
        if not any(cells):
            continue
        if header is None:
            header = cells if all(isinstance(v, str) and v.strip() for v in row[: len(cells)]) else []
            yield " | ".join(cells)
            continue
        labels = [*header, *[""] * len(cells)][: len(cells)]
        yield " | ".join(
            f"{label}: {cell}" if label and cell else cell for cell, label in zip(cells, labels, strict=True)
        )


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime) and value.time() == time(0):
        return value.date().isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return _one_line(str(value))


def _lines(texts: Iterable[str]) -> Iterator[str]:
    for text in texts:
        line = _one_line(text)
        if line:
            yield line


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    # A line that starts with '#' must not turn into a heading.
    return "\\" + line if line.startswith("#") else line
