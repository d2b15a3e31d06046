"""Extractive answers: the passage of the retrieved blocks that best answers the question, verbatim.

A passage is one to `WINDOW` consecutive sentences or lines of one block (`focus.units`): a manual states a
setting's name in one sentence and its default in the next ("work_mem (integer) Sets the base maximum amount
of memory ... The default value is four megabytes (4MB)."), so a sentence alone often names the value but
not what it is the value of. Each passage, read with its block's heading, is scored by
- the cosine of its embedding (the index's own model) to the question's, plus
- the share of the question's terms (stemmed as BM25 stems them) it holds, less
- one whole point when the question asks for a quantity ("how many", "what port") and it names no number,
- a little per sentence past the first, so that of two passages that hold the answer the shorter wins,
- a hair per block rank, so that a tie goes to the block retrieval ranked higher.

Measured on the demo sets and two real manuals against the single sentence with the most of the question's
terms (docs/answer-quality.md). The best passage's score is also the evidence for "I don't know": below
`MIN_SCORE` the documents are taken not to say.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ragserve.ingest.embedding import Embedder
from ragserve.ingest.search import Hit
from ragserve.service.focus import units
from ragserve.service.grounding import Terms, answers_the_question

__all__ = ["MIN_SCORE", "WINDOW", "Quote", "best_quote"]

WINDOW = 3  # the most consecutive sentences or lines a passage spans
MIN_SCORE = 1.15  # below this, no passage answers the question: the reply is the refusal
_PER_EXTRA_SENTENCE = 0.02
_PER_BLOCK_RANK = 0.001
_NO_NUMBER = 1.0


@dataclass(frozen=True)
class Quote:
    text: str  # the passage, verbatim (its sentences joined by a space where a line break was)
    block: int  # the block it is from, numbered from 1 in retrieval order
    score: float


def best_quote(question: str, blocks: Sequence[Hit], embedder: Embedder, terms: Terms) -> Quote | None:
    """The best passage of `blocks` for `question` with its score; None when the blocks hold no text."""
    found = _passages(blocks)
    if not found or not question.strip():
        return None
    read = [f"{heading}: {text}" if heading else text for _, _, heading, text in found]
    vectors = embedder.embed_documents([question, *read])  # one model call for the question and every passage
    cosine = vectors[1:] @ vectors[0]
    wanted = set(terms(question))
    scores = []
    for n, (b, width, _, text) in enumerate(found):
        share = len(wanted.intersection(terms(read[n]))) / len(wanted) if wanted else 0.0
        score = float(cosine[n]) + share - _PER_BLOCK_RANK * b - _PER_EXTRA_SENTENCE * (width - 1)
        if not answers_the_question(question, text):
            score -= _NO_NUMBER
        scores.append(score)
    best = int(np.argmax(scores))
    return Quote(found[best][3], found[best][0] + 1, round(scores[best], 4))


def _passages(blocks: Sequence[Hit]) -> list[tuple[int, int, str, str]]:
    """(block index, sentences spanned, heading, text) of every passage of every block."""
    out = []
    for b, hit in enumerate(blocks):
        parts = units(hit.text)
        for start in range(len(parts)):
            for width in range(1, min(WINDOW, len(parts) - start) + 1):
                out.append((b, width, hit.heading, " ".join(parts[start : start + width])))
    return out
