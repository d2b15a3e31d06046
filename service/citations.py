"""The `citations` of an answer: every block it was given, each marked whether the answer cites it."""

from typing import Any

from ragserve.ingest.search import Hit
from ragserve.service.attribution import attributed_block
from ragserve.service.prompt import cited_blocks
from ragserve.service.schemas import ChatRequest, Citation
from ragserve.service.state import ServiceState

__all__ = ["citations"]


def citations(state: ServiceState, body: ChatRequest, blocks: list[Hit], answer: str) -> list[dict[str, Any]]:
    """Every block the answer was given, each marked whether the answer (its first choice) cites it."""
    cited = cited_blocks(answer, len(blocks))
    attributed = None
    if not cited and state.config.prompt.attribute:
        question = body.question
        texts = [h.text for h in blocks]
        attributed = attributed_block(answer, question, texts, state.retriever.sparse.terms)
    return [
        Citation(
            index=i,
            source=h.source,
            heading=h.heading,
            chunk_id=h.chunk_id,
            score=h.score,
            cited=i in cited or i == attributed,
            attributed=i == attributed,
            text=h.text,
        ).model_dump()
        for i, h in enumerate(blocks, start=1)
    ]
