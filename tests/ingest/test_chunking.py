import pytest

from ragserve.errors import ConfigError
from ragserve.ingest.chunking import Chunker
from ragserve.ingest.embedding import DenseEmbedder
from ragserve.ingest.extract import extract_text

LONG = " ".join(f"Sentence number {i} talks about invoices and refunds." for i in range(300))


def _chunker(embedder: DenseEmbedder, max_tokens: int = 120, overlap: int = 16) -> Chunker:
    return Chunker(embedder.count_tokens, max_tokens, overlap)


def test_markdown_chunks_follow_headings_and_carry_the_heading_path(embedder: DenseEmbedder) -> None:
    md = (
        "# Guide\n\nIntro.\n\n## Install\n\nRun the installer.\n\n"
        "### Linux\n\nUse the tarball.\n\n## Use\n\nClick go."
    )
    chunks = _chunker(embedder).chunk("guide.md", md, "markdown")
    assert [(c.heading, c.text) for c in chunks] == [
        ("Guide", "Intro."),
        ("Guide > Install", "Run the installer."),
        ("Guide > Install > Linux", "Use the tarball."),
        ("Guide > Use", "Click go."),
    ]
    assert [c.index for c in chunks] == [0, 1, 2, 3]
    assert {c.source for c in chunks} == {"guide.md"}
    assert chunks[2].embed_text == "Guide > Install > Linux\nUse the tarball."


def test_html_chunks_follow_html_headings(embedder: DenseEmbedder) -> None:
    text = extract_text("html", b"<h1>Plans</h1><p>Two plans.</p><h2>Starter</h2><p>Ten robots.</p>")
    chunks = _chunker(embedder).chunk("plans.html", text, "html")
    assert [(c.heading, c.text) for c in chunks] == [
        ("Plans", "Two plans."),
        ("Plans > Starter", "Ten robots."),
    ]


def test_plain_text_is_not_split_on_hash_lines(embedder: DenseEmbedder) -> None:
    chunks = _chunker(embedder).chunk("notes.txt", "# not a heading in a text file\n\nbody", "text")
    assert [(c.heading, c.text) for c in chunks] == [("", "# not a heading in a text file\n\nbody")]


def test_a_code_fence_hash_is_not_a_heading(embedder: DenseEmbedder) -> None:
    md = "# Real\n\n```bash\n# a shell comment\necho hi\n```"
    chunks = _chunker(embedder).chunk("a.md", md, "markdown")
    assert {c.heading for c in chunks} == {"Real"}


def test_no_chunk_exceeds_the_token_cap_counting_the_heading(embedder: DenseEmbedder) -> None:
    md = "# A heading that is here\n\n" + LONG + "\n\n## Second\n\n" + "x" * 5000
    chunker = _chunker(embedder, max_tokens=120)
    chunks = chunker.chunk("long.md", md, "markdown")
    assert len(chunks) > 10
    for chunk in chunks:
        assert embedder.count_tokens(chunk.embed_text) <= 120


def test_the_default_cap_fits_the_model_so_nothing_is_silently_truncated(embedder: DenseEmbedder) -> None:
    chunker = _chunker(embedder, max_tokens=embedder.max_tokens, overlap=32)
    for chunk in chunker.chunk("long.txt", LONG, "text"):
        ids = embedder.tokenizer(chunk.embed_text)["input_ids"]
        assert len(ids) <= embedder.max_tokens + 2  # + [CLS] and [SEP]


def test_long_sections_overlap(embedder: DenseEmbedder) -> None:
    chunks = _chunker(embedder, max_tokens=60, overlap=20).chunk("t.txt", LONG, "text")
    first_words = chunks[1].text.split()[:4]
    assert " ".join(first_words) in chunks[0].text


def test_an_overlong_heading_path_is_cut_to_leave_room_for_text(embedder: DenseEmbedder) -> None:
    md = "# " + "very long heading " * 60 + "\n\nThe body."
    [chunk] = _chunker(embedder, max_tokens=100).chunk("h.md", md, "markdown")
    assert embedder.count_tokens(chunk.heading) <= 25
    assert chunk.text == "The body."


def test_an_overlap_of_half_the_chunk_or_more_is_a_config_error(embedder: DenseEmbedder) -> None:
    with pytest.raises(ConfigError, match="overlap"):
        _chunker(embedder, max_tokens=64, overlap=32)
