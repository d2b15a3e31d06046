"""Chunking: follow the document's headings first, then cap each piece in the embedder's own tokens."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from ragserve.errors import ConfigError

__all__ = ["CHUNKER_VERSION", "Chunk", "Chunker"]

# Bump when the chunking logic changes in a way that changes chunks: the index is then rebuilt.
CHUNKER_VERSION = 1

_HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4"), ("#####", "h5"), ("######", "h6")]
_HEADING_SEP = " > "
# The formats whose text is Markdown-shaped (ingest/extract.py): their headings start sections.
_HEADED = frozenset({"markdown", "html", "docx", "pptx", "xlsx"})


@dataclass(frozen=True)
class Chunk:
    """A piece of one document, with the headings above it and its position in the document."""

    source: str
    index: int
    heading: str
    text: str

    @property
    def embed_text(self) -> str:
        """What is embedded: the heading path gives a short piece its context."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text


class Chunker:
    """Splits Markdown by headings and then by size; no chunk exceeds max_tokens of the embedder."""

    def __init__(self, count_tokens: Callable[[str], int], max_tokens: int, overlap_tokens: int) -> None:
        if overlap_tokens >= max_tokens // 2:
            raise ConfigError(
                f"chunk overlap ({overlap_tokens}) must be under half the chunk size ({max_tokens})"
            )
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        self._count = count_tokens
        self._by_heading = MarkdownHeaderTextSplitter(_HEADERS, strip_headers=True)
        self._splitters: dict[int, RecursiveCharacterTextSplitter] = {}

    @property
    def params(self) -> dict[str, Any]:
        return {
            "version": CHUNKER_VERSION,
            "max_tokens": self.max_tokens,
            "overlap_tokens": self.overlap_tokens,
        }

    def chunk(self, source: str, text: str, fmt: str) -> list[Chunk]:
        """Chunks a document; Markdown, HTML and Office files follow their headings (a slide's title, a
        sheet's name), text and PDF their paragraphs."""
        sections = self._sections(text) if fmt in _HEADED else [("", text)]
        chunks: list[Chunk] = []
        for full_heading, body in sections:
            heading = self._fit_heading(full_heading)
            budget = self.max_tokens - (self._count(heading) + 1 if heading else 0)
            for piece in self._splitter(budget).split_text(body):
                if piece.strip():
                    chunks.append(Chunk(source, len(chunks), heading, piece.strip()))
        return chunks

    def _sections(self, text: str) -> list[tuple[str, str]]:
        sections = []
        for doc in self._by_heading.split_text(text):
            path = [str(doc.metadata[key]) for _, key in _HEADERS if key in doc.metadata]
            sections.append((_HEADING_SEP.join(path), doc.page_content))
        return sections

    def _fit_heading(self, heading: str) -> str:
        # A heading path may use at most a quarter of the budget; the text needs the rest.
        limit = self.max_tokens // 4
        while heading and self._count(heading) > limit:
            heading = heading[: int(len(heading) * 0.8)].rstrip()
        return heading

    def _splitter(self, budget: int) -> RecursiveCharacterTextSplitter:
        if budget not in self._splitters:
            self._splitters[budget] = RecursiveCharacterTextSplitter(
                chunk_size=budget,
                chunk_overlap=min(self.overlap_tokens, budget // 4),
                length_function=self._count,
                separators=["\n\n", "\n", ". ", " ", ""],
                keep_separator="end",
            )
        return self._splitters[budget]
