"""Feedback back into the loop: up-voted answers become draft labelled questions for `ragserve eval answers`,
down-voted ones candidates for the tenant's adapter dataset. Both are drafts that a person finishes.

`qa.jsonl` holds QAItem rows, each checked as load_qa checks it. The accepted answer is drafted from the
answer's first sentence that cites a block (else its first sentence): escaped, its whitespace flexible, its
[n] markers optional, cut to fit a QA regex. A draft matches its own answer and little that is worded
otherwise, so a reviewer shortens it to the fact (`14\\s+hours`). An up-voted refusal, as `eval answers`
recognises one, is an unanswerable question.

`adapter-candidates.jsonl` holds the chat dataset's rows without the reply to learn: the conversation ends
with the user's question, and the rejected answer sits beside it, never as an assistant turn. A candidate
added to a dataset as it is refuses the dataset ("no assistant turn at the end") instead of teaching the
answer that was voted down.
"""

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ragserve.errors import FeedbackNotFoundError, validation_problems
from ragserve.evaluation.qa import QAItem
from ragserve.files import write_atomically
from ragserve.service.feedback.record import FeedbackRecord
from ragserve.service.feedback.store import FeedbackStore
from ragserve.service.prompt import REFUSED

__all__ = ["CANDIDATES_FILE", "QA_FILE", "ExportReport", "accepted_answer", "export_feedback", "qa_row"]

QA_FILE = "qa.jsonl"
CANDIDATES_FILE = "adapter-candidates.jsonl"
_MAX_REGEX = 500  # QAItem's bound on an accepted answer
_MARKERS = r"(?:\s*\[\d{1,3}\])"  # the prompt's citation markers, [n]
_PIECE = re.compile(rf"(?P<marker>{_MARKERS}+)|(?P<space>\s+)|(?P<text>[^\s\[]+|\[)")
_LEADING_MARKERS = re.compile(r"(?:\[\d{1,3}\]\s*)+")
_BULLET = re.compile(r"\A(?:[-*\u2022]|\d{1,2}[.)])\s+")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+")
_END_PUNCTUATION = ".!?,;:"


@dataclass
class ExportReport:
    tenant: str
    source: str
    records: int
    skipped: list[str]  # unreadable stored lines, "file:line: problem"
    qa_path: str
    qa_rows: int
    unanswerable: int
    qa_left_out: list[str]  # up-votes that make no QA row, "id: why"
    follow_ups: list[str] = field(default_factory=list)  # QA rows whose question followed earlier turns
    candidates_path: str = ""
    candidates: int = 0
    exported_ids: list[str] = field(default_factory=list)  # every record read, for --clear
    cleared: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def export_feedback(store: FeedbackStore, tenant: str, out: Path) -> ExportReport:
    """Writes out/qa.jsonl from the up-votes and out/adapter-candidates.jsonl from the down-votes."""
    stored = store.read(tenant)
    if not stored.records:
        reasons = "; ".join(str(s) for s in stored.skipped[:3])
        raise FeedbackNotFoundError(
            f"no readable feedback for tenant {tenant!r} in {stored.source}"
            + (f" ({len(stored.skipped)} records skipped: {reasons})" if stored.skipped else "")
        )
    rows: list[QAItem] = []
    left_out: list[str] = []
    follow_ups: list[str] = []
    for record in (r for r in stored.records if r.rating == "up"):
        row = qa_row(record)
        if isinstance(row, str):
            left_out.append(f"{record.id}: {row}")
            continue
        rows.append(row)
        if len(record.messages) > 1:
            follow_ups.append(record.id)
    candidates = [_candidate(r) for r in stored.records if r.rating == "down"]
    out.mkdir(parents=True, exist_ok=True)
    # ASCII-escaped: the readers split lines with str.splitlines, which also breaks at U+2028 and the like.
    write_atomically(out / QA_FILE, "".join(json.dumps(r.model_dump()) + "\n" for r in rows))
    write_atomically(out / CANDIDATES_FILE, "".join(json.dumps(c) + "\n" for c in candidates))
    return ExportReport(
        tenant=tenant,
        source=stored.source,
        records=len(stored.records),
        skipped=[str(s) for s in stored.skipped],
        qa_path=str(out / QA_FILE),
        qa_rows=len(rows),
        unanswerable=sum(r.unanswerable for r in rows),
        qa_left_out=left_out,
        follow_ups=follow_ups,
        candidates_path=str(out / CANDIDATES_FILE),
        candidates=len(candidates),
        exported_ids=[r.id for r in stored.records],
    )


def qa_row(record: FeedbackRecord) -> QAItem | str:
    """The up-voted answer as a labelled question, or why it makes none."""
    row: dict[str, Any] = {"id": record.id, "question": record.question}
    if REFUSED.search(record.answer):
        row["unanswerable"] = True
    else:
        answer = accepted_answer(record.answer)
        if answer is None:
            return "the answer has no words to draft an accepted answer from"
        row["answers"] = [answer]
        cited = (c.source for c in record.citations if c.cited and c.source.strip())
        row["sources"] = list(dict.fromkeys(cited))
    try:
        return QAItem.model_validate(row)
    except ValidationError as exc:
        return validation_problems(exc)


def accepted_answer(answer: str) -> str | None:
    """A case-insensitive regex drafted from the answer's first cited sentence (else its first sentence)
    that matches the answer; None when the answer has no words."""
    sentences = _sentences(answer)
    if not sentences:
        return None
    text = next((s for s, cites in sentences if cites), sentences[0][0])
    pieces = [(m.lastgroup or "text", m.group()) for m in _PIECE.finditer(text)]
    rendered: list[tuple[str, str]] = []
    budget = _MAX_REGEX
    for kind, piece in _trimmed(pieces):
        part = {"text": re.escape(piece), "marker": _MARKERS + "*", "space": r"\s+"}[kind]
        if len(part) > budget:  # the draft ends here, with as much of a word as fits
            fitted = "".join(_fitting(piece, budget)) if kind == "text" else ""
            if fitted:
                rendered.append((kind, fitted))
            break
        rendered.append((kind, part))
        budget -= len(part)
    regex = "".join(part for _, part in _trimmed(rendered, punctuation=False))
    return regex if re.search(r"\w", regex) else None


def _sentences(answer: str) -> list[tuple[str, bool]]:
    """The answer's sentences (and lines, for bullets) that hold a word, each with whether it cites a
    block; a marker just after a sentence's full stop belongs to that sentence."""
    found: list[tuple[str, bool]] = []
    for line in answer.split("\n"):  # a U+2028 inside a line is whitespace to a regex, not a break
        for part in _SENTENCE_BREAK.split(_BULLET.sub("", line.strip(), count=1)):
            lead = _LEADING_MARKERS.match(part)
            if lead and found:
                found[-1] = (found[-1][0], True)
            text = part[lead.end() if lead else 0 :].strip()
            if re.search(r"\w", text):
                found.append((text, re.search(_MARKERS, text) is not None))
    return found


def _trimmed(pieces: list[tuple[str, str]], punctuation: bool = True) -> list[tuple[str, str]]:
    """Without what ends the sentence: trailing spaces and markers and (in source text) its punctuation."""
    pieces = list(pieces)
    while pieces:
        kind, piece = pieces[-1]
        if kind != "text":
            pieces.pop()
            continue
        if punctuation and piece.rstrip(_END_PUNCTUATION) != piece:
            piece = piece.rstrip(_END_PUNCTUATION)
            pieces[-1] = (kind, piece)
            if not piece:
                pieces.pop()
                continue
        break
    return pieces


def _fitting(text: str, budget: int) -> list[str]:
    """The escaped characters of text, as many from its start as fit in budget."""
    escaped: list[str] = []
    for char in text:
        part = re.escape(char)
        if len(part) > budget:
            break
        escaped.append(part)
        budget -= len(part)
    return escaped


def _candidate(record: FeedbackRecord) -> dict[str, Any]:
    """A down-voted answer: the conversation to finish with the right reply, and what was wrong with it."""
    return {
        "messages": [m.model_dump() for m in record.messages],
        "rejected": record.answer,
        "comment": record.comment or "",
        "feedback_id": record.id,
        "model": record.model,
        "citations": [c.model_dump() for c in record.citations],
        "created_at": record.created_at,
    }
