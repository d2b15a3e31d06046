"""Every answer checked against the blocks its model read, and the tenant's policy for one that is not
supported. An answer is unsupported when one of its claims is, or when the question asks for a quantity and
the answer names no number (`answers_question: false`: "You can return it for a full refund." to "How many
days...?"). The policy is `on_unsupported` in the tenant's config:

- "flag": the answer as it is; its `grounding` says which claims no block supports.
- "refuse": the refusal the prompt asks for, "I don't know.".
- "quote": the passage of the context that best answers the question, verbatim, with its citation [n];
  the refusal when no passage holds more than half of the question's terms.

The policy applies to one plain text answer only: an answer to a request with `tools`, `response_format` or
`n` over 1, or without retrieval (`rag: false`, `k: 0`), is returned as it is; only those with
`response_format` or without retrieval have no grounding.
"""

from dataclasses import dataclass
from typing import Any

from ragserve.ingest.search import Hit
from ragserve.service.focus import units
from ragserve.service.grounding import Terms, answers_the_question, ground
from ragserve.service.prompt import REFUSAL
from ragserve.service.schemas import ChatRequest
from ragserve.service.state import ServiceState

__all__ = ["CheckedAnswer", "check_answer", "may_replace", "quote_for"]

# A quote must hold more than this share of the question's terms (most of what was asked) to stand as an
# answer; otherwise "quote" refuses: a passage about something else is not an answer.
_QUOTE_MIN_SHARE = 0.5


@dataclass(frozen=True)
class CheckedAnswer:
    replacement: str | None  # what the client gets instead of the model's answer, when the policy replaced it
    grounding: dict[str, Any] | None  # None when the answer had no blocks to be checked against


def may_replace(state: ServiceState, tenant: str, body: ChatRequest, blocks: list[Hit]) -> bool:
    """Whether the tenant's policy may replace this request's answer: a stream must then be held whole."""
    policy = state.config.tenants[tenant].on_unsupported
    plain = body.response_format is None and not body.tools and body.n == 1
    return policy != "flag" and bool(blocks) and plain


def check_answer(
    state: ServiceState, tenant: str, body: ChatRequest, blocks: list[Hit], answer: str
) -> CheckedAnswer:
    if not blocks or body.response_format is not None:
        return CheckedAnswer(None, None)
    question = next((m.text() for m in reversed(body.messages) if m.role == "user"), "")
    terms = state.retriever.sparse.terms
    pairs = [(h.heading, h.text) for h in blocks]
    grounding = ground(answer, question, pairs, terms)
    state.metrics.answer_support.labels(tenant).observe(grounding.support)
    policy = state.config.tenants[tenant].on_unsupported
    answered = answers_the_question(question, answer)
    report = {**grounding.to_json(), "answers_question": answered, "policy": policy, "replaced": None}
    if (grounding.supported and answered) or not may_replace(state, tenant, body, blocks):
        return CheckedAnswer(None, report)
    replacement = quote_for(question, blocks, terms) if policy == "quote" else None
    replacement = replacement or REFUSAL
    checked = ground(replacement, question, pairs, terms)
    draft = {"support": grounding.support, "by": "quote" if replacement != REFUSAL else "refusal"}
    report = {**checked.to_json(), "answers_question": True, "policy": policy, "replaced": draft}
    return CheckedAnswer(replacement, report)


def quote_for(question: str, blocks: list[Hit], terms: Terms) -> str | None:
    """The sentence or line of the blocks that holds most of the question's terms (read with its block's
    heading), verbatim but for a line wrap, with its block's [n]; a tie goes to the higher-ranked block.
    None when even the best holds no more than half of them."""
    wanted = set(terms(question))
    if not wanted:
        return None
    best: tuple[float, str, int] | None = None
    for number, hit in enumerate(blocks, start=1):
        for part in units(hit.text):
            share = len(wanted.intersection(terms(f"{hit.heading} {part}"))) / len(wanted)
            if best is None or share > best[0]:
                best = (share, part, number)
    if best is None or best[0] <= _QUOTE_MIN_SHARE:
        return None
    return f"{best[1]} [{best[2]}]"
