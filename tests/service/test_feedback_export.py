"""Drafting labelled questions from up-voted answers: the accepted answer matches its own answer, with its
[n] markers optional and its whitespace flexible; a refusal is unanswerable; every row is a valid QAItem."""

import re

import pytest

from ragserve.evaluation.feedback_export import accepted_answer, qa_row
from ragserve.evaluation.qa import QAItem
from ragserve.service.feedback.record import FeedbackRecord


def record(answer: str, question: str = "How long does the battery last?", **extra: object) -> FeedbackRecord:
    return FeedbackRecord.model_validate({
        "id": "fb-1", "created_at": "2026-01-01T00:00:00.000+00:00", "tenant": "acme", "rating": "up",
        "messages": [{"role": "user", "content": question}], "answer": answer, **extra,
    })  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "draft"),
    [
        ("The battery lasts 14 hours [1].", r"The\s+battery\s+lasts\s+14\s+hours"),
        ("Hello from Acme!\n- The R2 costs $4,000 [2].\n- Bye [3].", r"The\s+R2\s+costs\s+\$4,000"),
        ("Sure. It runs 14 hours. [1] Anything else?", r"It\s+runs\s+14\s+hours"),
        ("It runs  14\thours.", r"It\s+runs\s+14\s+hours"),
        ("1. The warranty is 3 years.", r"The\s+warranty\s+is\s+3\s+years"),
        ("The warranty [2] is 3 years.", r"The\s+warranty(?:\s*\[\d{1,3}\])*\s+is\s+3\s+years"),
    ],
)
def test_the_draft_is_the_first_cited_sentence_escaped_with_flexible_spaces(answer: str, draft: str) -> None:
    assert accepted_answer(answer) == draft
    assert re.search(draft, answer, re.IGNORECASE)


def test_the_draft_takes_optional_markers_where_the_answer_had_them() -> None:
    draft = accepted_answer("The warranty [2] is 3 years [1].")
    assert draft is not None
    for other in (
        "the warranty is 3 years",
        "The warranty [4][5] is 3 years.",
        "The warranty is\n3 years [1]",
    ):
        assert re.search(draft, other, re.IGNORECASE), other
    assert not re.search(draft, "The warranty is 2 years", re.IGNORECASE)


def test_a_long_answer_is_cut_to_a_regex_of_500_characters_that_still_matches() -> None:
    answer = " ".join(f"word{i} (x)" for i in range(300)) + " [1]."
    draft = accepted_answer(answer)
    assert draft is not None and 450 < len(draft) <= 500
    assert re.search(draft, answer, re.IGNORECASE)
    assert not draft.endswith((r"\s+", "*"))


@pytest.mark.parametrize("answer", ["", "...", "[1] [2]", "  \n - "])
def test_an_answer_without_words_gives_no_draft(answer: str) -> None:
    assert accepted_answer(answer) is None


def test_an_up_voted_answer_is_an_answerable_question_citing_the_cited_sources() -> None:
    citations = [
        {"index": 1, "source": "battery.md", "cited": True},
        {"index": 2, "source": "warranty.md", "cited": False},
        {"index": 3, "source": "battery.md", "cited": True},
    ]
    row = qa_row(record("The battery lasts 14 hours [1][3].", citations=citations))
    assert isinstance(row, QAItem)
    assert (row.id, row.unanswerable, row.sources) == ("fb-1", False, ["battery.md"])
    assert row.match("the battery lasts 14 hours")


@pytest.mark.parametrize("refusal", ["I don't know.", "The context does not say how long it lasts."])
def test_an_up_voted_refusal_is_an_unanswerable_question(refusal: str) -> None:
    row = qa_row(record(refusal))
    assert isinstance(row, QAItem)
    assert row.unanswerable and row.answers == [] and row.sources == []


def test_a_question_too_long_for_a_qa_file_makes_no_row_and_says_why() -> None:
    assert (
        qa_row(record("Yes [1].", question="q" * 5000))
        == "question: String should have at most 4000 characters"
    )
    assert qa_row(record("...")) == "the answer has no words to draft an accepted answer from"
