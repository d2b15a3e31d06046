from pathlib import Path

import pytest

from ragserve.errors import SkipDocument
from ragserve.ingest import extract
from ragserve.ingest.extract import extract_text
from ragserve.ingest.html_text import MAX_DEPTH
from tests.support.documents import write_pdf

PAGE = """<!doctype html><html><head><title>T</title><style>p { color: red }</style>
<script>var tracking = "secret";</script></head><body>
<nav><a href="/">Home</a> <a href="/pricing">Pricing</a></nav>
<header><div role="navigation">Menu</div></header>
<main><h1>Returns</h1><p>Return within <b>30 days</b>.</p>
<h2>Exceptions</h2><ul><li>Opened software</li><li>Gift cards</li></ul>
<table><tr><th>Item</th><th>Days</th></tr><tr><td>Laptop</td><td>14</td></tr></table>
<div>Loose text in a div.</div></main>
<footer>Copyright</footer></body></html>"""


def test_html_keeps_headings_paragraphs_lists_and_tables_and_drops_chrome() -> None:
    text = extract_text("html", PAGE.encode())
    assert text.split("\n\n") == [
        "# Returns",
        "Return within 30 days.",
        "## Exceptions",
        "- Opened software",
        "- Gift cards",
        "Item | Days",
        "Laptop | 14",
        "Loose text in a div.",
    ]
    for dropped in ("tracking", "Home", "Menu", "Copyright", "color"):
        assert dropped not in text


def test_html_blocks_keep_document_order_through_nested_containers_and_lists() -> None:
    html = (
        "<body><div>lead <b>in</b><p>a</p>"
        "<ul><li>b<ul><li>c<ol><li>c2</li></ol></li></ul></li><li>d</li></ul>"
        "tail<section><h2>S</h2><div><div>deep</div></div></section></div><p>e</p></body>"
    )
    assert extract_text("html", html.encode()).split("\n\n") == [
        "lead in", "a", "- b", "- c", "- c2", "- d", "tail", "## S", "deep", "e",
    ]  # fmt: skip


def _nested(depth: int) -> bytes:
    return ("<div>" * depth + "x" + "</div>" * depth).encode()


def test_html_nested_to_the_depth_limit_is_indexed() -> None:
    assert extract_text("html", _nested(MAX_DEPTH)) == "x"


@pytest.mark.parametrize("depth", [600, 100_000])
def test_html_nested_too_deep_is_skipped_with_the_depth(depth: int) -> None:
    with pytest.raises(SkipDocument, match=f"HTML nested {depth} elements deep \\(the limit is 512\\)"):
        extract_text("html", _nested(depth))


def test_an_unexpected_parser_failure_skips_the_document_with_a_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(html: str) -> str:
        raise KeyError("attrs")

    monkeypatch.setattr(extract, "html_to_markdown", broken)
    with pytest.raises(SkipDocument, match="the html parser failed: KeyError: 'attrs'"):
        extract_text("html", b"<p>fine</p>")


def test_markdown_and_text_pass_through_and_a_bom_is_dropped() -> None:
    assert extract_text("markdown", "\ufeff# Title\n\nBody".encode()) == "# Title\n\nBody"
    assert extract_text("text", b"plain words") == "plain words"


def test_binary_file_is_skipped() -> None:
    with pytest.raises(SkipDocument, match="binary"):
        extract_text("text", b"abc\x00\x01\x02")


def test_non_utf8_file_is_skipped_with_the_offset() -> None:
    with pytest.raises(SkipDocument, match=r"not UTF-8 \(invalid byte at offset 3\)"):
        extract_text("markdown", "café".encode("latin-1") + b" menu")


def test_pdf_text_is_extracted_page_by_page(tmp_path: Path) -> None:
    path = tmp_path / "guide.pdf"
    write_pdf(path, [["Page one says hello."], ["Page two (with parens) says bye."]])
    assert (
        extract_text("pdf", path.read_bytes()) == "Page one says hello.\n\nPage two (with parens) says bye."
    )


def test_corrupt_pdf_is_skipped() -> None:
    with pytest.raises(SkipDocument, match="unreadable PDF"):
        extract_text("pdf", b"%PDF-1.4\nthis is not a pdf at all")


def test_html_without_text_is_skipped() -> None:
    with pytest.raises(SkipDocument, match="no text"):
        extract_text("html", b"<html><script>x()</script><nav>menu</nav></html>")


def test_nested_list_items_stay_separate_items() -> None:
    text = extract_text("html", b"<ul><li>Parent<ul><li>Child one</li><li>Child two</li></ul></li></ul>")
    assert text.split("\n\n") == ["- Parent", "- Child one", "- Child two"]
