"""Scoring one answer against its labels, and a set-up's answers into summary metrics.

- matched: an accepted answer (case-insensitive regex) is in the answer;
- supported: the accepted answer that matched is in the retrieved context too (right, and not guessed);
- refused: the answer is the refusal the prompt asks for, or says the context does not tell;
- source_retrieved / source_cited: an expected source is among the citations / among those cited as [n].
"""

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from ragserve.evaluation.qa import QAItem
from ragserve.service.prompt import REFUSED

__all__ = ["QuestionResult", "RetrievalResult", "score_answer", "summarize", "summarize_retrieval"]


@dataclass
class QuestionResult:
    id: str
    question: str
    unanswerable: bool
    answer: str
    matched: bool
    supported: bool
    refused: bool
    source_retrieved: bool
    source_cited: bool
    expected: list[str]
    retrieved: list[str]
    cited: list[str]
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    support: float | None = None  # the grounding check's, of the answer returned
    replaced: str | None = None  # "refusal" or "quote" when the tenant's policy replaced the model's answer
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RetrievalResult:
    id: str
    question: str
    rank: int | None  # 1-based rank of the first hit from an expected source, within the first k
    sources: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def score_answer(
    item: QAItem,
    answer: str,
    citations: list[dict[str, Any]],
    latency_ms: float,
    usage: dict[str, Any],
    grounding: dict[str, Any] | None = None,
) -> QuestionResult:
    retrieved = [str(c.get("source", "")) for c in citations]
    cited = [str(c.get("source", "")) for c in citations if c.get("cited")]
    context = "\n".join(str(c.get("text", "")) for c in citations)
    match = item.match(answer)
    expected = set(item.sources)
    return QuestionResult(
        id=item.id,
        question=item.question,
        unanswerable=item.unanswerable,
        answer=answer,
        matched=match is not None,
        supported=match is not None and _in_context(item, match.group(0), context),
        refused=bool(REFUSED.search(answer)),
        source_retrieved=bool(expected & set(retrieved)),
        source_cited=bool(expected & set(cited)),
        expected=list(item.sources),
        retrieved=retrieved,
        cited=cited,
        latency_ms=round(latency_ms, 1),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        support=grounding.get("support") if grounding else None,
        replaced=(grounding.get("replaced") or {}).get("by") if grounding else None,
    )


def _in_context(item: QAItem, matched: str, context: str) -> bool:
    """The matched text itself, or the accepted answer it matched (2 years / two years), is in the context."""
    folded = " ".join(context.lower().split())
    return " ".join(matched.lower().split()) in folded or item.match(context) is not None


def summarize(results: list[QuestionResult]) -> dict[str, Any]:
    answerable = [r for r in results if not r.unanswerable]
    unanswerable = [r for r in results if r.unanswerable]
    with_sources = [r for r in answerable if r.expected]
    matched = [r for r in answerable if r.matched]
    latencies = [r.latency_ms for r in results if r.error is None]
    unanswerable_refused = _share(unanswerable, lambda r: r.refused)
    answerable_refused = _share(answerable, lambda r: r.refused)
    # Balanced: the mean of "refused when it should" and "answered when it should"; never refusing scores 0.5.
    parts = [p for p in (unanswerable_refused, None if answerable_refused is None else 1 - answerable_refused)
             if p is not None]  # fmt: skip
    # Answers stated (not refused) to answerable questions: the support score should tell right from wrong.
    stated = [r for r in answerable if not r.refused and r.support is not None and r.error is None]
    right = [r.support for r in stated if r.matched]
    wrong = [r.support for r in stated if not r.matched]
    return {
        "answer_accuracy": _share(answerable, lambda r: r.matched),
        "confidently_wrong": _share(answerable, lambda r: not r.matched and not r.refused),
        "refusal_accuracy": round(sum(parts) / len(parts), 3) if parts else None,
        "unanswerable_refused": unanswerable_refused,
        "answerable_refused": answerable_refused,
        "source_retrieved": _share(with_sources, lambda r: r.source_retrieved),
        "source_cited": _share(with_sources, lambda r: r.source_cited),
        "supported": _share(matched, lambda r: r.supported),
        "support_right": _mean(right),
        "support_wrong": _mean(wrong),
        "support_auroc": _auroc(right, wrong),
        "replaced": sum(r.replaced is not None for r in results),
        "latency_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "prompt_tokens_mean": round(statistics.fmean(r.prompt_tokens for r in results), 1),
        "completion_tokens_mean": round(statistics.fmean(r.completion_tokens for r in results), 1),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "errors": sum(r.error is not None for r in results),
    }


def summarize_retrieval(results: list[RetrievalResult]) -> dict[str, Any]:
    """hit@1, hit@5 and MRR@5 by source, over the questions that name a source."""
    ranked = [r for r in results if r.sources]
    return {
        "hit_at_1": _share(ranked, lambda r: r.rank == 1),
        "hit_at_5": _share(ranked, lambda r: r.rank is not None and r.rank <= 5),
        "mrr_at_5": round(statistics.fmean(1 / r.rank if r.rank else 0.0 for r in ranked), 3)
        if ranked
        else None,
        "questions": len(ranked),
    }


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.fmean(known), 3) if known else None


def _auroc(right: list[float | None], wrong: list[float | None]) -> float | None:
    """The chance that a right answer's score beats a wrong one's (ties count half): 0.5 is no better than a
    coin, 1.0 tells every right answer from every wrong one."""
    pos = [v for v in right if v is not None]
    neg = [v for v in wrong if v is not None]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return round(wins / (len(pos) * len(neg)), 3)


def _share(rows: list[Any], test: Any) -> float | None:
    return round(sum(bool(test(r)) for r in rows) / len(rows), 3) if rows else None
