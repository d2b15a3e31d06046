"""The grounding check, the quote and the answer policies on hand-made cases: no LLM, no server."""

import pytest

from ragserve.evaluation.qa import QAItem
from ragserve.evaluation.scoring import QuestionResult, score_answer, summarize
from ragserve.ingest.embedding import DenseEmbedder
from ragserve.ingest.search import Hit
from ragserve.ingest.sparse import Bm25Encoder
from ragserve.service.grounding import answers_the_question, claim_spans, ground, specifics
from ragserve.service.quotes import MIN_SCORE, best_quote

TERMS = Bm25Encoder().terms
BLOCKS = [
    ("Warranty", "Acme robots carry a 3-year warranty. Globex grinders carry a 1-year warranty."),
    ("Battery", "The Roadrunner R2 battery runs for 14 hours on one charge."),
    ("Backup", "Run `pg_dump --format=custom` nightly. Set max_wal_size to 1GB."),
]


def _claims(answer: str) -> list[tuple[str, float, bool]]:
    grounding = ground(answer, "?", BLOCKS, TERMS)
    return [(answer[c.start : c.end], c.score, c.supported) for c in grounding.claims]


def test_an_invented_identifier_is_unsupported_however_close_the_words() -> None:
    grounding = ground("To back up, run CREATE_NON_NON_SUPP nightly [3].", "How to back up?", BLOCKS, TERMS)
    assert grounding.support == 0.0
    assert grounding.claims[0].unknown == ["create_non_non_supp"]


def test_a_paraphrase_that_keeps_the_number_is_supported() -> None:
    [(_, score, supported)] = _claims("On a single charge, the R2 battery lasts 14 hours.")
    assert supported, score


def test_a_number_is_checked_with_its_unit() -> None:
    """10 years is not what a context saying "10 percent" states; 3 years is what "3-year" states."""
    blocks = [
        ("Returns", "Used robots carry a 10 percent restocking fee."),
        ("Warranty", "A 3-year warranty."),
    ]
    wrong = ground("The warranty is 10 years.", "How long is the warranty?", blocks, TERMS)
    assert wrong.claims[0].unknown == ["10 year"]
    right = ground("It is a 3 year warranty.", "How long is the warranty?", blocks, TERMS)
    assert right.supported, right


def test_an_answer_without_a_number_does_not_answer_how_many() -> None:
    assert not answers_the_question("How many days do I have?", "You can return it for a full refund.")
    assert answers_the_question("How many days do I have?", "Within forty-five days, or 45.")
    assert answers_the_question("How many days do I have?", "I don't know.")
    assert answers_the_question("Who makes it?", "Acme does.")


def test_a_quoted_sentence_scores_1() -> None:
    for _, text in BLOCKS:
        for claim, score, _ in _claims(text):
            assert score == 1.0, claim


def test_each_claim_is_scored_with_its_place_in_the_answer() -> None:
    answer = "The battery runs for 14 hours [2].\nCall 555-0199 for help."
    grounding = ground(answer, "How long does the battery last?", BLOCKS, TERMS)
    first, second = grounding.claims
    assert answer[first.start : first.end] == "The battery runs for 14 hours [2]."
    assert (first.supported, first.blocks) == (True, [2])
    assert (second.supported, second.unknown) == (False, ["555-0199"])
    assert grounding.support == 0.5


def test_a_refusal_claims_nothing() -> None:
    assert claim_spans("I don't know.") == []
    grounding = ground("I don't know.", "What is the price?", BLOCKS, TERMS)
    assert (grounding.support, grounding.claims, grounding.supported) == (1.0, [], True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Set max_wal_size to 1GB.", {"max_wal_size", "1 gb"}),
        ("It lasts 3 years, or a 3-year term, at 10% off.", {"3 year", "10 percent"}),
        ("Run `pg_ctl reload` or pass --verbose and -p 5432.", {"pg_ctl reload", "--verbose", "-p", "5432"}),
        ("The IPv4Hosts column needs CREATE TABLE.", {"ipv4hosts", "create", "table"}),
        ("The battery lasts all day.", set()),
    ],
)
def test_specifics_are_numbers_identifiers_options_and_code(text: str, expected: set[str]) -> None:
    assert specifics(text) == expected


def test_a_quote_is_passage_of_the_blocks_verbatim_and_scores_low_when_none_answers(
    embedder: DenseEmbedder,
) -> None:
    hits = [Hit("x.md", heading, f"c{i}", 1.0, text) for i, (heading, text) in enumerate(BLOCKS)]
    quote = best_quote("How long does the R2 battery run?", hits, embedder, TERMS)
    assert quote is not None and quote.block == 2 and quote.score >= MIN_SCORE
    assert quote.text == "The Roadrunner R2 battery runs for 14 hours on one charge."
    unrelated = best_quote("Who founded the company?", hits, embedder, TERMS)
    assert unrelated is not None and unrelated.score < MIN_SCORE  # no passage is about it: the refusal


def test_a_quote_from_a_manual_paragraph_names_the_value_asked_for_verbatim(
    embedder: DenseEmbedder,
) -> None:
    manual = (
        "work_mem (integer) Sets the base maximum amount of memory to be used by a query operation"
        "\n(such as a sort or hash table) before writing to temporary disk files. If this value is"
        "\nspecified without units, it is taken as kilobytes. The default value is four megabytes (4MB)."
        " Note that a complex query might run several sort operations at once."
    )
    hits = [Hit("runtime-config.html", "20.4.1. Memory", "c0", 1.0, manual)]
    quote = best_quote("How much memory may a sort operation use by default?", hits, embedder, TERMS)
    assert quote is not None
    assert "4MB" in quote.text  # a number, as the question asks for a quantity
    assert quote.text.replace(" ", "") in manual.replace("\n", "").replace(" ", "")  # verbatim


def _result(answer: str, support: float | None = None) -> QuestionResult:
    item = QAItem(id=answer, question="How long?", answers=["right"])
    grounding = None if support is None else {"support": support, "replaced": None}
    return score_answer(item, answer, [], 100.0, {}, grounding)


def test_the_report_tells_confidently_wrong_answers_and_how_well_support_separates_them() -> None:
    rows = [
        _result("right", support=1.0),
        _result("right", support=0.5),
        _result("wrong", support=0.0),
        _result("wrong", support=0.5),
        _result("I don't know."),
    ]
    summary = summarize(rows)
    assert summary["confidently_wrong"] == 0.4  # 2 of 5 answerable: wrong and not refused
    assert (summary["support_right"], summary["support_wrong"]) == (0.75, 0.25)
    assert summary["support_auroc"] == 0.875  # 3.5 of the 4 right/wrong pairs ordered right
