"""The labelled questions: one JSON object a line, checked whole before anything runs.

    {"id": "a01", "question": "...", "answers": ["regex", ...], "sources": ["doc id", ...],
     "unanswerable": false}

An answerable question needs at least one accepted answer (a case-insensitive regex); an unanswerable one
has none, and its right answer is the refusal the prompt asks for.
"""

import json
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ragserve.errors import QAFileError, validation_problems

__all__ = ["QAItem", "load_qa"]

_MAX_BYTES = 16 * 1024 * 1024


class QAItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(min_length=1, max_length=100)]
    question: Annotated[str, Field(min_length=1, max_length=4000)]
    answers: Annotated[list[Annotated[str, Field(min_length=1, max_length=500)]], Field(max_length=50)] = []
    sources: Annotated[list[Annotated[str, Field(min_length=1, max_length=1000)]], Field(max_length=50)] = []
    unanswerable: bool = False

    @field_validator("answers")
    @classmethod
    def _regexes(cls, answers: list[str]) -> list[str]:
        for answer in answers:
            try:
                re.compile(answer)
            except re.error as exc:
                raise ValueError(f"{answer!r} is not a valid regex: {exc}") from None
        return answers

    @field_validator("question")
    @classmethod
    def _not_blank(cls, question: str) -> str:
        if not question.strip():
            raise ValueError("is blank")
        return question

    @model_validator(mode="after")
    def _answers_match_kind(self) -> "QAItem":
        if self.unanswerable and self.answers:
            raise ValueError("an unanswerable question takes no answers")
        if not self.unanswerable and not self.answers:
            raise ValueError("an answerable question needs at least one accepted answer")
        return self

    @cached_property
    def patterns(self) -> list[re.Pattern[str]]:
        return [re.compile(a, re.IGNORECASE) for a in self.answers]

    def match(self, text: str) -> re.Match[str] | None:
        """The first accepted answer found in the text."""
        return next((m for p in self.patterns if (m := p.search(text))), None)


def load_qa(path: Path) -> list[QAItem]:
    """Every line checked; the first bad one is an error naming the file and the line."""
    try:
        if path.stat().st_size > _MAX_BYTES:
            raise QAFileError(f"{path}: larger than {_MAX_BYTES // (1024 * 1024)} MiB")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QAFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise QAFileError(f"{path}: unreadable: {exc}") from None
    items: list[QAItem] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = QAItem.model_validate(json.loads(line))
        except ValueError as exc:  # json's and pydantic's errors alike
            reason = validation_problems(exc) if isinstance(exc, ValidationError) else f"not JSON: {exc}"
            raise QAFileError(f"{path}:{number}: {reason}") from None
        if item.id in seen:
            raise QAFileError(f"{path}:{number}: id {item.id!r} is used twice")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise QAFileError(f"{path}: holds no questions")
    return items
