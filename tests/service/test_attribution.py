"""Citing for the model: the block an answer's new terms come from, with the index's own BM25 terms."""

from ragserve.ingest.sparse import Bm25Encoder
from ragserve.service.attribution import attributed_block

TERMS = Bm25Encoder().terms
BLOCKS = [
    "The Roadrunner R2 carries up to 120 kg and drives at 2.4 metres per second.",
    "Batteries are covered for 2 years or 6,000 charge cycles. Support answers until 18:00.",
]


def test_the_block_holding_the_answers_new_terms_is_cited() -> None:
    question = "For how many charge cycles are the batteries covered?"
    answer = "The batteries are covered for 6,000 charge cycles."
    assert attributed_block(answer, question, BLOCKS, TERMS) == 2


def test_terms_are_stemmed_as_the_index_stems_them() -> None:
    answer = "It carries loads of 120 kilograms when driving."
    assert attributed_block(answer, "What can it carry?", BLOCKS, TERMS) == 1


def test_a_tie_goes_to_the_higher_ranked_block() -> None:
    assert attributed_block("Up to 2 of them.", "How many?", BLOCKS, TERMS) == 1


def test_an_answer_with_nothing_new_or_nothing_shared_is_not_attributed() -> None:
    question = "How fast does the Roadrunner R2 drive?"
    assert attributed_block("The Roadrunner R2 drives fast.", question, BLOCKS, TERMS) is None
    assert attributed_block("I don't know.", question, BLOCKS, TERMS) is None
    assert attributed_block("It costs 999 dollars.", question, BLOCKS, TERMS) is None
