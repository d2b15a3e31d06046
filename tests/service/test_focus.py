"""Focusing retrieved blocks on the sentences closest to the question, with the real embedding model."""

from ragserve.ingest.embedding import DenseEmbedder
from ragserve.ingest.search import Hit
from ragserve.service.focus import focus, units

WARRANTY = Hit("warranty.md", "Warranty and returns > Warranty", "w", 0.9,
               "Every robot carries a 3-year warranty. Batteries are covered for 2 years. Damage from "
               "collisions is not covered.")  # fmt: skip
SPECS = Hit("r2.md", "Roadrunner R2 > Specifications", "s", 0.8,
            "- Payload: up to 120 kg per trip.\n- Top speed: 2.4 metres per second.\n"
            "- Battery: runs for 14 hours.")  # fmt: skip


def test_units_are_sentences_and_lines() -> None:
    assert units(SPECS.text) == ["- Payload: up to 120 kg per trip.", "- Top speed: 2.4 metres per second.",
                                 "- Battery: runs for 14 hours."]  # fmt: skip
    assert units("It costs 2.4 EUR. Ships in 3 days.") == ["It costs 2.4 EUR.", "Ships in 3 days."]


def test_a_sentence_wrapped_over_lines_is_one_unit() -> None:
    """Hard-wrapped Markdown: a line that goes on in lower case is the same sentence, not a line of a list."""
    text = (
        "The demo centre is open to customers by\nappointment on Tuesdays.\n- Payload: 120 kg\n- Top: 2 m/s"
    )
    assert units(text) == [
        "The demo centre is open to customers by appointment on Tuesdays.",
        "- Payload: 120 kg",
        "- Top: 2 m/s",
    ]


def test_focus_keeps_the_closest_units_in_their_blocks_and_order(embedder: DenseEmbedder) -> None:
    focused = focus([WARRANTY, SPECS], "How fast can the Roadrunner R2 drive?", embedder, keep=2)
    kept = "\n".join(h.text for h in focused)
    assert "Top speed: 2.4 metres per second" in kept
    assert len(kept.splitlines()) == 2
    sources = [h.source for h in focused]
    assert sources == [s for s in ("warranty.md", "r2.md") if s in sources]  # block order kept


def test_focus_of_fewer_units_than_asked_changes_nothing(embedder: DenseEmbedder) -> None:
    assert focus([WARRANTY], "warranty?", embedder, keep=10) == [WARRANTY]
