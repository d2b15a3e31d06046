"""Word, PowerPoint and Excel files, made by their libraries here, through extraction and chunking."""

import io
import zipfile
from pathlib import Path

import docx
import openpyxl
import pytest
from pptx import Presentation
from pptx.util import Inches

from ragserve.errors import SkipDocument
from ragserve.ingest import office
from ragserve.ingest.chunking import Chunk, Chunker
from ragserve.ingest.embedding import DenseEmbedder
from ragserve.ingest.extract import extract_text
from ragserve.ingest.sources import scan_folder


def _saved(document: object) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)  # type: ignore[attr-defined]
    return buffer.getvalue()


def _word() -> bytes:
    document = docx.Document()
    document.add_heading("Returns policy", level=1)
    document.add_paragraph("Robots may be returned within 30 days.")
    document.add_heading("Exceptions", level=2)
    document.add_paragraph("Opened batteries cannot be returned.")
    table = document.add_table(rows=2, cols=2)
    for row, cells in enumerate([("Item", "Days"), ("Laptop", "14")]):
        for column, text in enumerate(cells):
            table.cell(row, column).text = text
    return _saved(document)


def _deck() -> bytes:
    deck = Presentation()
    for title, bullets in [("Quarterly plan", ["Ship the R2 robot"]), ("Pricing", ["Starter costs 10 EUR"])]:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text_frame.text = bullets[0]
    slide.notes_slide.notes_text_frame.text = "Mention the launch discount."
    grid = slide.shapes.add_table(2, 2, Inches(1), Inches(4), Inches(4), Inches(1)).table
    for row, cells in enumerate([("Plan", "Robots"), ("Starter", "10")]):
        for column, text in enumerate(cells):
            grid.cell(row, column).text = text
    return _saved(deck)


def _workbook() -> bytes:
    book = openpyxl.Workbook()
    prices = book.active
    prices.title = "Prices"
    prices.append(["SKU", "Price", "Stock"])
    prices.append(["R2", 499.5, 12])
    prices.append(["R3", 899, None])
    contacts = book.create_sheet("Contacts")
    contacts.append(["Ada Lovelace", "ada@example.com"])
    return _saved(book)


def _chunks(embedder: DenseEmbedder, name: str, fmt: str, data: bytes) -> list[Chunk]:
    return Chunker(embedder.count_tokens, 120, 16).chunk(name, extract_text(fmt, data), fmt)


def test_word_headings_become_the_chunks_heading_path(embedder: DenseEmbedder) -> None:
    chunks = _chunks(embedder, "returns.docx", "docx", _word())
    assert [(c.heading, c.text) for c in chunks] == [
        ("Returns policy", "Robots may be returned within 30 days."),
        # The heading splitter joins a section's lines with Markdown's hard break ("  \n").
        ("Returns policy > Exceptions", "Opened batteries cannot be returned.  \nItem | Days  \nLaptop | 14"),
    ]


def test_each_slide_is_a_section_under_its_title_with_tables_and_notes(embedder: DenseEmbedder) -> None:
    chunks = _chunks(embedder, "plan.pptx", "pptx", _deck())
    assert [(c.heading, c.text) for c in chunks] == [
        ("Slide 1: Quarterly plan", "Ship the R2 robot"),
        (
            "Slide 2: Pricing",
            "Starter costs 10 EUR  \nPlan | Robots\nStarter | 10  \nNotes: Mention the launch discount.",
        ),
    ]


def test_each_sheet_is_a_section_under_its_name_and_rows_carry_their_labels(embedder: DenseEmbedder) -> None:
    chunks = _chunks(embedder, "prices.xlsx", "xlsx", _workbook())
    assert [(c.heading, c.text) for c in chunks] == [
        ("Prices", "SKU | Price | Stock\nSKU: R2 | Price: 499.5 | Stock: 12\nSKU: R3 | Price: 899"),
        ("Contacts", "Ada Lovelace | ada@example.com"),
    ]


def test_office_files_in_a_docs_folder_are_found_by_extension(tmp_path: Path) -> None:
    for name, data in [("a.docx", _word()), ("b.pptx", _deck()), ("c.xlsx", _workbook())]:
        (tmp_path / name).write_bytes(data)
    scan = scan_folder(tmp_path, 10_000_000)
    assert [(f.doc_id, f.format) for f in scan.files] == [
        ("a.docx", "docx"),
        ("b.pptx", "pptx"),
        ("c.xlsx", "xlsx"),
    ]


def test_a_truncated_word_file_is_skipped_with_the_reason() -> None:
    data = _word()
    with pytest.raises(
        SkipDocument, match=r"unreadable Word document: not a ZIP package \(truncated or corrupt\)"
    ):
        extract_text("docx", data[: len(data) // 2])


def test_a_zip_without_the_main_part_is_not_a_deck() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr("[Content_Types].xml", "<Types/>")
    with pytest.raises(
        SkipDocument, match=r"not a PowerPoint deck: the package has no ppt/presentation\.xml"
    ):
        extract_text("pptx", buffer.getvalue())


def test_a_password_protected_workbook_is_skipped_with_the_reason() -> None:
    ole2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512
    with pytest.raises(SkipDocument, match="password-protected or legacy binary Office file"):
        extract_text("xlsx", ole2)


def test_a_zip_bomb_is_refused_before_anything_is_inflated(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _word()
    monkeypatch.setattr(office, "MAX_UNPACKED_BYTES", 10_000)
    with pytest.raises(SkipDocument, match=r"Word document unpacks to \d+ bytes \(the limit is 10000\)"):
        extract_text("docx", data)


def test_a_corrupt_part_inside_a_valid_zip_is_skipped_not_raised() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(_word())) as source, zipfile.ZipFile(buffer, "w") as broken:
        for item in source.infolist():
            body = b"<w:document" if item.filename == "word/document.xml" else source.read(item)
            broken.writestr(item, body)
    with pytest.raises(SkipDocument, match="docx"):
        extract_text("docx", buffer.getvalue())
