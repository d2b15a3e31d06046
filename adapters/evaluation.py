"""The fine-tune decision, with numbers: the held-out split through four set-ups on one base model.

1. base: the prompt as the service sends it, with no house-style instructions;
2. prompted: the house-style instructions added to the system prompt;
3. few_shot: the same, plus k training examples as earlier turns;
4. adapter: the plain prompt, answered by the LoRA adapter.

Each is scored on format adherence (share of replies matching the dataset card's spec), similarity to the
reference reply (ROUGE-L F1 over words), prompt tokens per request and latency. All four run against the
same vLLM server with greedy decoding, so the differences are the set-ups' own.
"""

import asyncio
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from ragserve.adapters.dataset import Example
from ragserve.adapters.dataset_card import DatasetCard

__all__ = ["SETUPS", "ChatServer", "SetupScore", "evaluate", "rouge_l"]

SETUPS = ("base", "prompted", "few_shot", "adapter")
_WORD = re.compile(r"\w+|[^\w\s]")


class ChatServer(Protocol):
    """What the eval needs of a server: an OpenAI chat completion (the service's vLLM client is one)."""

    async def chat(self, payload: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class SetupScore:
    format_adherence: float | None  # None when the dataset card declares no format
    similarity: float
    prompt_tokens: float
    completion_tokens: float
    latency_p50_ms: float
    latency_mean_ms: float
    examples: int
    samples: list[str]  # the first replies, to read beside the numbers

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1: the longest common subsequence of words, as a share of both texts."""
    a, b = _WORD.findall(candidate.lower()), _WORD.findall(reference.lower())
    if not a or not b:
        return 0.0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


async def evaluate(
    client: ChatServer,
    base_name: str,
    adapter_name: str,
    train: Sequence[Example],
    held_out: Sequence[Example],
    card: DatasetCard,
    max_tokens: int = 128,
    concurrency: int = 4,
) -> dict[str, SetupScore]:
    shots = list(train[: card.few_shot])
    scores = {}
    for setup in SETUPS:
        model = adapter_name if setup == "adapter" else base_name
        prompts = [_messages(setup, e, card, shots) for e in held_out]
        results = await _run(client, model, prompts, max_tokens, concurrency)
        scores[setup] = _score(results, held_out, card)
    return scores


def _messages(
    setup: str, example: Example, card: DatasetCard, shots: Sequence[Example]
) -> list[dict[str, str]]:
    prompt = [dict(m) for m in example.prompt]
    if setup in ("base", "adapter") or not card.instructions:
        return prompt
    if prompt and prompt[0]["role"] == "system":
        prompt[0]["content"] = f"{prompt[0]['content']}\n\n{card.instructions}"
    else:
        prompt.insert(0, {"role": "system", "content": card.instructions})
    if setup == "few_shot":
        turns = [
            t for shot in shots for t in (_last_user(shot), {"role": "assistant", "content": shot.reply})
        ]
        prompt[1:1] = turns
    return prompt


def _last_user(example: Example) -> dict[str, str]:
    return next(dict(m) for m in reversed(example.prompt) if m["role"] == "user")


async def _run(
    client: ChatServer, model: str, prompts: list[list[dict[str, str]]], max_tokens: int, concurrency: int
) -> list[tuple[str, int, int, float]]:
    gate = asyncio.Semaphore(concurrency)

    async def one(messages: list[dict[str, str]]) -> tuple[str, int, int, float]:
        async with gate:
            payload = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0.0}
            t0 = time.perf_counter()
            completion = await client.chat(payload)
            elapsed = time.perf_counter() - t0
        usage = completion.get("usage") or {}
        text = str(completion["choices"][0]["message"].get("content") or "")
        return text, int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)), elapsed

    return list(await asyncio.gather(*(one(m) for m in prompts)))


def _score(
    results: list[tuple[str, int, int, float]], held_out: Sequence[Example], card: DatasetCard
) -> SetupScore:
    replies = [r[0] for r in results]
    latencies = [r[3] * 1000 for r in results]
    adherence = (
        round(sum(card.format.matches(r) for r in replies) / len(replies), 3) if card.format.defined else None
    )
    return SetupScore(
        format_adherence=adherence,
        similarity=round(
            statistics.fmean(rouge_l(r, e.reply) for r, e in zip(replies, held_out, strict=True)), 3
        ),
        prompt_tokens=round(statistics.fmean(r[1] for r in results), 1),
        completion_tokens=round(statistics.fmean(r[2] for r in results), 1),
        latency_p50_ms=round(statistics.median(latencies), 1),
        latency_mean_ms=round(statistics.fmean(latencies), 1),
        examples=len(results),
        samples=replies[:2],
    )
