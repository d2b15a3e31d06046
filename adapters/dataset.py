"""Chat-format JSONL training data, checked line by line, and its seeded held-out split.

A line is `{"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}` ending with the
assistant reply to learn, as hosted fine-tuning services take it. Lines that cannot be trained on refuse
the dataset; duplicates and overlong lines are dropped, and held-out rows that leak into the training
split leave the held-out split. Every one is reported with its line number.
"""

import hashlib
import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragserve.errors import DatasetError

__all__ = ["DatasetReport", "Example", "LineProblem", "load_dataset", "split_dataset"]

_ROLES = ("system", "user", "assistant")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Example:
    line: int
    messages: list[dict[str, str]]

    @property
    def prompt(self) -> list[dict[str, str]]:
        return self.messages[:-1]

    @property
    def reply(self) -> str:
        return self.messages[-1]["content"]

    @property
    def prompt_key(self) -> str:
        """The prompt, case and spacing normalised: a held-out row with a training row's prompt leaks."""
        return _SPACE.sub(" ", json.dumps(self.prompt)).strip().lower()


@dataclass(frozen=True)
class LineProblem:
    line: int
    problem: str
    action: str  # "refused", "dropped", or "kept in train only"


@dataclass
class DatasetReport:
    path: str
    sha256: str
    lines: int
    examples: list[Example]
    problems: list[LineProblem] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "lines": self.lines,
            "usable": len(self.examples),
            "problems": [asdict(p) for p in self.problems],
        }


def load_dataset(
    path: Path, count_tokens: Callable[[list[dict[str, str]]], int], max_tokens: int
) -> DatasetReport:
    """Reads and checks every line; raises DatasetError naming each refused line."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    report = DatasetReport(str(path), hashlib.sha256(data).hexdigest(), 0, [])
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        report.lines += 1
        messages, problem = _parse(raw)
        if problem:
            report.problems.append(LineProblem(number, problem, "refused"))
            continue
        key = json.dumps(messages, sort_keys=True)
        if key in seen:
            report.problems.append(LineProblem(number, f"exact duplicate of line {seen[key]}", "dropped"))
            continue
        seen[key] = number
        tokens = count_tokens(messages)
        if tokens > max_tokens:
            report.problems.append(LineProblem(number, f"{tokens} tokens, over {max_tokens}", "dropped"))
            continue
        report.examples.append(Example(number, messages))
    refused = [p for p in report.problems if p.action == "refused"]
    if refused:
        listed = "; ".join(f"line {p.line}: {p.problem}" for p in refused[:10])
        more = f" (and {len(refused) - 10} more)" if len(refused) > 10 else ""
        raise DatasetError(f"{path}: {len(refused)} bad lines: {listed}{more}")
    if not report.examples:
        raise DatasetError(f"{path}: no usable examples")
    return report


def split_dataset(
    report: DatasetReport, eval_fraction: float, seed: int, eval_lines: Sequence[int] | None = None
) -> tuple[list[Example], list[Example]]:
    """A seeded held-out split, or the recorded one; held-out rows whose prompt or reply is in train leak."""
    examples = report.examples
    if eval_lines is not None:
        wanted = set(eval_lines)
        held = [e for e in examples if e.line in wanted]
        return [e for e in examples if e.line not in wanted], held
    if not 0 < eval_fraction < 1:
        raise DatasetError(f"eval fraction must be between 0 and 1, not {eval_fraction}")
    order = list(examples)
    random.Random(seed).shuffle(order)
    n_eval = max(1, round(len(order) * eval_fraction))
    if n_eval >= len(order):
        raise DatasetError(f"{report.path}: {len(order)} examples are too few to hold {n_eval} out")
    held, train = order[:n_eval], order[n_eval:]
    prompts = {e.prompt_key for e in train}
    replies = {e.reply.strip() for e in train}
    kept = held
    while True:  # a row moved to train can make another held-out row a leak in turn
        leaks = [e for e in kept if e.prompt_key in prompts or e.reply.strip() in replies]
        if not leaks:
            break
        for example in leaks:
            what = "prompt" if example.prompt_key in prompts else "reply"
            report.problems.append(
                LineProblem(example.line, f"its {what} is also in train", "kept in train only")
            )
            prompts.add(example.prompt_key)
            replies.add(example.reply.strip())
        train += leaks
        kept = [e for e in kept if e not in leaks]
    if not kept:
        raise DatasetError(f"{report.path}: every held-out row also appears in train")
    return sorted(train, key=lambda e: e.line), sorted(kept, key=lambda e: e.line)


def _parse(raw: str) -> tuple[list[dict[str, str]], str | None]:  # noqa: PLR0911 - a return per problem
    try:
        row = json.loads(raw)
    except json.JSONDecodeError as exc:
        return [], f"not JSON: {exc.msg} at column {exc.colno}"
    if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
        return [], 'not an object with a "messages" list'
    messages: list[dict[str, str]] = []
    for i, message in enumerate(row["messages"]):
        if not isinstance(message, dict) or set(message) - {"role", "content"}:
            return [], f"messages[{i}] must have only role and content"
        role, content = message.get("role"), message.get("content")
        if role not in _ROLES:
            return [], f"messages[{i}].role is {role!r}, not one of {', '.join(_ROLES)}"
        if not isinstance(content, str):
            return [], f"messages[{i}].content is missing or not a string"
        messages.append({"role": role, "content": content})
    if not messages or messages[-1]["role"] != "assistant":
        return [], "no assistant turn at the end"
    if not messages[-1]["content"].strip():
        return [], "the assistant turn is empty"
    if not any(m["role"] == "user" for m in messages):
        return [], "no user turn"
    return messages, None
