"""Prompt assembly: the tenant's system prompt, numbered context blocks, then the conversation, in budget."""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ingest.search import Hit
from ragserve.errors import PromptTooLongError

__all__ = ["Message", "Prompt", "PromptBuilder", "cited_blocks", "retrieval_query", "system_text"]

_CITATION = re.compile(r"\[(\d{1,3})\]")
_RETRIEVAL_QUERY_CHARS = 600


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class Prompt:
    messages: list[Message]
    blocks: list[Hit]
    tokens: int


def retrieval_query(messages: Sequence[Message]) -> str:
    """The last user turn, then earlier user turns for context, newest first, a few hundred characters."""
    parts: list[str] = []
    size = 0
    for message in reversed(messages):
        if message.role != "user" or not message.content.strip():
            continue
        if parts and size + len(message.content) > _RETRIEVAL_QUERY_CHARS:
            break
        parts.append(message.content.strip())
        size += len(message.content)
    return "\n".join(parts)[:_RETRIEVAL_QUERY_CHARS]


def cited_blocks(answer: str, n_blocks: int) -> set[int]:
    """The block numbers an answer refers to as [n]."""
    return {int(m) for m in _CITATION.findall(answer) if 1 <= int(m) <= n_blocks}


class PromptBuilder:
    """Fits the prompt in the model's context: drops the lowest-ranked blocks first, then the oldest turns."""

    def __init__(self, count_tokens: Callable[[list[Message]], int], max_model_len: int) -> None:
        self._count = count_tokens
        self.max_model_len = max_model_len

    def build(
        self, system_prompt: str, hits: Sequence[Hit], turns: Sequence[Message], max_tokens: int
    ) -> Prompt:
        budget = self.max_model_len - max_tokens
        extra_system = [m.content for m in turns if m.role == "system"]
        conversation = [m for m in turns if m.role != "system"]
        blocks = list(hits)
        while True:
            messages = [Message("system", system_text(system_prompt, extra_system, blocks)), *conversation]
            tokens = self._count(messages)
            if tokens <= budget:
                return Prompt(messages, blocks, tokens)
            if blocks:
                blocks.pop()
            elif len(conversation) > 1:
                conversation = conversation[1:]
            else:
                raise PromptTooLongError(
                    f"the prompt needs {tokens} tokens but at most {budget} fit "
                    f"({self.max_model_len} in the model's context, {max_tokens} kept for the answer)"
                )


def system_text(system_prompt: str, extra: list[str], blocks: Sequence[Hit]) -> str:
    parts = [system_prompt.strip(), *[e.strip() for e in extra if e.strip()]]
    if blocks:
        context = "\n\n".join(
            f"[{i}] {hit.source}{' > ' + hit.heading if hit.heading else ''}\n{hit.text}"
            for i, hit in enumerate(blocks, start=1)
        )
        parts.append(
            "Answer using the numbered context below. Cite the blocks you use as [1], [2]. "
            "If the context does not contain the answer, say you do not know.\n\nContext:\n" + context
        )
    return "\n\n".join(part for part in parts if part)
