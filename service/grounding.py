"""The grounding check: each claim of an answer scored against the sentences of the blocks the model read.

A claim is a sentence or a line of the answer (a refusal is no claim). Its score, in [0, 1], is how much of
it one passage of the context states, where a passage is a sentence or line of a block read with its
block's heading (so that "It runs for 14 hours" still says what "it" is):
- its content terms, stemmed as the BM25 index stems them, that the passage holds, as a share: the mean of
  that share over all its terms and over those the question did not already hold (its new information);
- its specifics (numbers, identifiers, options, commands, quoted or code text), each of which must be in
  that passage as written (a number with a unit of time, size, length or share, with that unit in any
  spelling). A specific found in no block at all makes the claim unsupported outright: an invented command
  or value is the worst answer there is, however close its words are to a page.

The score is the best passage's terms share times its specifics share (a sentence hard-wrapped over two
lines is one passage: `focus.units`). A claim is supported at `SUPPORTED` or above, and the
answer's `support` is the share of its claims supported (1.0 for an answer that claims nothing, such as a
refusal). Nothing here calls a model: a check costs about a millisecond an answer at p50 on the demo
questions (docs/answer-quality.md, "The grounding check").
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ragserve.service.focus import units
from ragserve.service.prompt import REFUSED

__all__ = ["SUPPORTED", "Claim", "Grounding", "answers_the_question", "claim_spans", "ground", "specifics"]

SUPPORTED = 0.5  # a claim scoring this or more is supported

Terms = Callable[[str], list[str]]

_CLAIM = re.compile(r"[^\n]+?(?:[.!?](?=\s|$)|$)", re.MULTILINE)
_CITATION = re.compile(r"\[\d{1,3}\]")
# Specifics: text in backticks or quotes; words holding a digit, an inner `_ . / : = @ #` or an inner capital
# (max_wal_size, pg_dump, /etc/hosts, IPv4Hosts, v2.1); a leading dash (--verbose, -p); ALL-CAPS words
# (CREATE, NULL). A sentence's first word is capitalised, not an identifier: only inner capitals count.
_QUOTED = re.compile(r"`([^`\n]{1,80})`|\"([^\"\n]{1,80})\"")
_WORD = re.compile(r"(?<![\w-])-{0,2}\w(?:[\w./:=@#+-]*\w)?")
_SPECIFIC = re.compile(r"\d|\w[_./:=@#]\w|[a-z][A-Z]|^-{1,2}\w|^[A-Z]{2,}$")
# Units a number is named with: each spelling to its name.
_UNITS = {
    **{f"{u}{s}": u for u in ("second", "minute", "hour", "day", "week", "month", "year") for s in ("", "s")},
    "sec": "second", "secs": "second", "min": "minute", "mins": "minute", "h": "hour", "hrs": "hour",
    "ms": "millisecond", "millisecond": "millisecond", "milliseconds": "millisecond",
    "percent": "percent", "%": "percent", "per cent": "percent",
    "kb": "kb", "mb": "mb", "gb": "gb", "tb": "tb", "kib": "kb", "mib": "mb", "gib": "gb", "bytes": "byte",
    "byte": "byte", "kg": "kg", "g": "g", "km": "km", "m": "m", "cm": "cm", "mm": "mm", "metre": "m",
    "metres": "m", "meter": "m", "meters": "m",
}  # fmt: skip
_UNIT_NAMES = frozenset(_UNITS.values())
_ATTACHED = re.compile(r"(\d+(?:[.,]\d+)*)-?[a-z]+")
_MEASURE = re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)*)(?:\s?|-)(%|[A-Za-z]+)(?![\w])")
_QUANTITY = re.compile(
    r"\bhow (?:many|much|long|often|far|fast|big|large|old|soon|heavy|high|low)\b"
    r"|\bwhat (?:time|year|percentage|number|port|size)\b|\bwhich (?:year|port|version)\b",
    re.IGNORECASE,
)
_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "fifteen": "15", "twenty": "20",
    "thirty": "30", "hundred": "100",
}  # fmt: skip


@dataclass(frozen=True)
class Claim:
    start: int  # the claim's characters in the answer: answer[start:end]
    end: int
    score: float
    supported: bool
    blocks: list[int]  # the 1-based numbers of the blocks holding its best passage
    unknown: list[str] = field(default_factory=list)  # specifics that no block holds

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Grounding:
    support: float
    claims: list[Claim]

    @property
    def supported(self) -> bool:
        return all(c.supported for c in self.claims)

    def to_json(self) -> dict[str, Any]:
        return {"support": self.support, "claims": [c.to_json() for c in self.claims]}


def answers_the_question(question: str, answer: str) -> bool:
    """False when the question asks for a quantity (how many, how long, what time...) and the answer names
    no number at all: it may be supported, but it does not answer."""
    if not _QUANTITY.search(question) or REFUSED.search(answer):
        return True
    return bool(re.search(r"\d", answer)) or any(re.search(rf"\b{w}\b", answer, re.I) for w in _NUMBER_WORDS)


def claim_spans(answer: str) -> list[tuple[int, int]]:
    """The sentences and lines of an answer that state something, as (start, end) character offsets."""
    spans = []
    for match in _CLAIM.finditer(answer):
        text = match.group(0)
        lead = len(text) - len(text.lstrip())
        start, end = match.start() + lead, match.end() - (len(text) - len(text.rstrip()))
        bare = _CITATION.sub(" ", answer[start:end])
        if re.search(r"[^\W\d_]", bare) and not REFUSED.search(bare):
            spans.append((start, end))
    return spans


def specifics(text: str) -> set[str]:
    """The numbers, identifiers, options, commands and quoted text a sentence names, folded to lower case. A
    number with a unit of time, size, length or share is named with its unit ("10 year" for "10 years" or
    "10-year"): 10 years is not in a context that says 10 percent."""
    plain = _QUOTED.sub(" ", text)
    found = {(a or b).strip().lower() for a, b in _QUOTED.findall(text) if (a or b).strip()}
    measured = {}
    for number, unit in _MEASURE.findall(plain):
        name = _UNITS.get(unit.lower())
        if name:
            measured[number] = f"{number} {name}"
    for token in _WORD.findall(plain):
        word = token.rstrip(".:").lower()
        attached = _ATTACHED.fullmatch(word)  # 3-year, 1gb
        number = attached.group(1) if attached else word
        if number in measured:
            found.add(measured[number])
        elif word and _SPECIFIC.search(token.rstrip(".:")):
            found.add(word)
    return found


def ground(answer: str, question: str, blocks: Sequence[tuple[str, str]], terms: Terms) -> Grounding:
    """`blocks`: each block's (heading, text), numbered from 1 as the prompt numbers them."""
    passages = _passages(blocks, terms)
    context = _folded(" ".join(f"{heading} {text}" for heading, text in blocks))
    asked = frozenset(terms(question))
    claims = [
        _claim(answer, start, end, passages, context, terms, asked) for start, end in claim_spans(answer)
    ]
    support = sum(c.supported for c in claims) / len(claims) if claims else 1.0
    return Grounding(round(support, 3), claims)


@dataclass(frozen=True)
class _Passage:
    block: int
    text: str  # folded, with the block's heading
    terms: frozenset[str]


def _passages(blocks: Sequence[tuple[str, str]], terms: Terms) -> list[_Passage]:
    passages = []
    for number, (heading, text) in enumerate(blocks, start=1):
        for part in units(text) or [""]:
            full = f"{heading} {part}"
            passages.append(_Passage(number, _folded(full), frozenset(terms(full))))
    return passages


def _claim(
    answer: str,
    start: int,
    end: int,
    passages: list[_Passage],
    context: str,
    terms: Terms,
    asked: frozenset[str],
) -> Claim:
    text = _CITATION.sub(" ", answer[start:end])
    wanted = frozenset(terms(text))
    new = (wanted - asked) or wanted
    named = specifics(text)
    unknown = sorted(s for s in named if not _holds(context, s))
    if not wanted and not unknown:
        return Claim(start, end, 1.0, True, [])  # only stop words ("It is."): nothing to check
    if unknown or not passages:
        return Claim(start, end, 0.0, False, [], unknown)
    scored = []
    for passage in passages:
        share = (len(new & passage.terms) / len(new) + len(wanted & passage.terms) / len(wanted)) / 2
        named_share = sum(_holds(passage.text, s) for s in named) / len(named) if named else 1.0
        scored.append((share * named_share, passage.block))
    best = max(score for score, _ in scored)
    holding = sorted({block for score, block in scored if score == best and best > 0})
    return Claim(start, end, round(best, 3), best >= SUPPORTED, holding)


def _folded(text: str) -> str:
    return " ".join(text.lower().split())


def _holds(folded: str, specific: str) -> bool:
    """Whether folded context text names the specific as a whole token (a number also as its word, and a
    measure with any spelling of its unit)."""
    number, _, unit = specific.partition(" ")
    numbers = {number, *(w for w, digits in _NUMBER_WORDS.items() if digits == number)}
    if unit in _UNIT_NAMES:
        spellings = "|".join(re.escape(s) for s, name in _UNITS.items() if name == unit)
        return any(
            re.search(rf"(?<![\w.]){re.escape(n)}[\s-]?(?:{spellings})(?!\w)", folded) for n in numbers
        )
    forms = {specific, *numbers} if not unit else {specific}
    return any(re.search(rf"(?<![\w]){re.escape(form)}(?![\w])", folded) for form in forms)
