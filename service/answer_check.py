"""Every answer checked against the blocks its model read, and the tenant's policy for one that is not
supported. An answer is unsupported when one of its claims is, or when the question asks for a quantity and
the answer names no number (`answers_question: false`: "You can return it for a full refund." to "How many
days...?"). The policy is `on_unsupported` in the tenant's config:

- "flag": the answer as it is; its `grounding` says which claims no block supports.
- "refuse": the refusal the prompt asks for, "I don't know.".
- "quote": the passage of the retrieved blocks that best answers the question, verbatim, with its citation
  [n] (service/quotes.py); the refusal when no passage scores `quotes.MIN_SCORE`. Its [n] and the citations
  then number the blocks as retrieval found them, whole, not as the model read them (focused).

A tenant whose `answer_mode` is "quote" gets that quote for every plain answer, with nothing generated
(`quoted_answer`).

The policy applies to one plain text answer only: an answer to a request with `tools`, `response_format` or
`n` over 1, or without retrieval (`rag: false`, `k: 0`), is returned as it is; only those with
`response_format` or without retrieval have no grounding.
"""

from dataclasses import dataclass
from typing import Any

from ragserve.ingest.search import Hit
from ragserve.service.grounding import answers_the_question, ground
from ragserve.service.prompt import REFUSAL, Prompt
from ragserve.service.quotes import MIN_SCORE, best_quote
from ragserve.service.schemas import ChatRequest
from ragserve.service.state import ServiceState

__all__ = ["CheckedAnswer", "check_answer", "is_plain", "may_replace", "quoted_answer"]


@dataclass(frozen=True)
class CheckedAnswer:
    replacement: str | None  # what the client gets instead of the model's answer, when the policy replaced it
    grounding: dict[str, Any] | None  # None when the answer had no blocks to be checked against
    blocks: list[Hit]  # the blocks the answer's [n] refer to: the citations


def is_plain(body: ChatRequest) -> bool:
    """One text answer: no tools, no `response_format`, one choice. Only such an answer is ever replaced."""
    return body.response_format is None and not body.tools and body.n == 1


def may_replace(state: ServiceState, tenant: str, body: ChatRequest, blocks: list[Hit]) -> bool:
    """Whether the tenant's policy may replace this request's answer: a stream must then be held whole."""
    policy = state.tenants.settings(tenant).on_unsupported
    return policy != "flag" and bool(blocks) and is_plain(body)


def check_answer(
    state: ServiceState, tenant: str, body: ChatRequest, prompt: Prompt, answer: str
) -> CheckedAnswer:
    """CPU work (the quote embeds its passages): callers run it in a thread."""
    blocks = prompt.blocks
    if not blocks or body.response_format is not None:
        return CheckedAnswer(None, None, blocks)
    question = body.question
    terms = state.retriever.sparse.terms
    grounding = ground(answer, question, [(h.heading, h.text) for h in blocks], terms)
    state.metrics.answer_support.labels(tenant).observe(grounding.support)
    policy = state.tenants.settings(tenant).on_unsupported
    answered = answers_the_question(question, answer)
    report = {**grounding.to_json(), "answers_question": answered, "policy": policy, "replaced": None}
    if (grounding.supported and answered) or not may_replace(state, tenant, body, blocks):
        return CheckedAnswer(None, report, blocks)
    text, blocks = _quote(state, question, prompt) if policy == "quote" else (REFUSAL, blocks)
    replaced = {"support": grounding.support, "by": "refusal" if text == REFUSAL else "quote"}
    return CheckedAnswer(text, _report(state, question, text, blocks, policy, replaced), blocks)


def quoted_answer(state: ServiceState, tenant: str, body: ChatRequest, prompt: Prompt) -> CheckedAnswer:
    """The answer of a tenant whose `answer_mode` is "quote": nothing generated, only the quote (or the
    refusal), with its grounding. CPU work, like `check_answer`."""
    question = body.question
    text, blocks = _quote(state, question, prompt)
    policy = state.tenants.settings(tenant).on_unsupported
    return CheckedAnswer(text, _report(state, question, text, blocks, policy, None), blocks)


def _quote(state: ServiceState, question: str, prompt: Prompt) -> tuple[str, list[Hit]]:
    """The passage of the retrieved blocks, whole, that best answers the question, verbatim, with its [n]
    numbering those blocks; the refusal when none scores `MIN_SCORE` (service/quotes.py)."""
    blocks = prompt.retrieved or prompt.blocks
    quote = best_quote(question, blocks, state.retriever.embedder, state.retriever.sparse.terms)
    if quote is None or quote.score < MIN_SCORE:
        return REFUSAL, prompt.blocks
    return f"{quote.text} [{quote.block}]", blocks


def _report(
    state: ServiceState, question: str, text: str, blocks: list[Hit], policy: str, replaced: Any
) -> dict[str, Any]:
    checked = ground(text, question, [(h.heading, h.text) for h in blocks], state.retriever.sparse.terms)
    return {**checked.to_json(), "answers_question": True, "policy": policy, "replaced": replaced}
