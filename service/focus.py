"""Focusing the retrieved blocks on the sentences that answer, so a small model reads less to find the fact.

Each block is split into sentences and lines (a list item or a table row is a line); each one, prefixed by
its block's heading path so that "It runs for 14 hours" still says what "it" is, is embedded with the index's
own model and scored against the query. The best `keep` units stay, in their blocks, in document order;
a block left with none is dropped. Block numbers are assigned after, so citations still line up.
"""

import re
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ragserve.ingest.embedding import Embedder
from ragserve.ingest.search import Hit

__all__ = ["focus", "units"]

_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|\n+")
_LINE_WRAP = re.compile(r"\n(?=[a-z(])")  # a sentence wrapped onto the next line goes on there


def units(text: str) -> list[str]:
    """The sentences and lines of a block, in order; a sentence hard-wrapped over lines is one unit."""
    return [u.strip() for u in _BOUNDARY.split(_LINE_WRAP.sub(" ", text)) if u.strip()]


def focus(hits: Sequence[Hit], query: str, embedder: Embedder, keep: int) -> list[Hit]:
    split = [units(hit.text) for hit in hits]
    flat = [(b, i) for b, parts in enumerate(split) for i in range(len(parts))]
    if keep <= 0 or len(flat) <= keep:
        return list(hits)
    texts = [f"{hits[b].heading}: {split[b][i]}" if hits[b].heading else split[b][i] for b, i in flat]
    vectors = embedder.embed_documents([query, *texts])  # one model call for the query and every unit
    scores = vectors[1:] @ vectors[0]
    chosen = {flat[n] for n in np.argsort(-scores)[:keep]}
    focused = []
    for b, hit in enumerate(hits):
        kept = [part for i, part in enumerate(split[b]) if (b, i) in chosen]
        if kept:
            focused.append(replace(hit, text="\n".join(kept)))
    return focused
