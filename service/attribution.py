"""Citing for the model: the block an answer draws on, when the answer names none as [n].

The bundled model seldom writes [n], however it is asked (docs/answer-quality.md), so a reader cannot tell
which source an answer came from. The service attributes it instead. The answer's terms that the question
did not already hold (its new information: a number, a name, a setting), stemmed as the BM25 index stems
them, are looked up in each block the model read. The block holding the most of them is cited; a tie goes to
the higher-ranked block, and an answer that shares no new term with any block is left uncited.

The answer's text is never changed (it may be JSON, or a tenant's house format): the citation is marked
`cited` and `attributed` in the response's `citations`.
"""

from collections.abc import Callable, Sequence

__all__ = ["attributed_block"]


def attributed_block(
    answer: str, question: str, blocks: Sequence[str], terms: Callable[[str], list[str]]
) -> int | None:
    """The 1-based number of the block the answer's new terms come from, or None."""
    new = set(terms(answer)) - set(terms(question))
    if not new:
        return None
    shared = [len(new.intersection(terms(block))) for block in blocks]
    best = max(shared, default=0)
    return shared.index(best) + 1 if best else None
