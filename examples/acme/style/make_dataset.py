"""Writes acme-style.jsonl: the Acme house format, on invented products, in the service's prompt shape.

Every example is what the chat service sends vLLM at its default layout, built by the service's own
PromptBuilder: Acme's system prompt with the instruction and the numbered context blocks, then the question. The reply is in the
house format: a greeting line, one to three bullets that restate the context and cite it, and a fixed
sign-off. Every fact in a reply is in that example's own context, and the products are invented: the
dataset teaches format and grounding, never facts, which come from retrieval. About one question in six is
not answered by its context, and the reply says so instead of guessing.

So that the style keeps the grounding skill, as many rows again come from the grounding dataset's
generator (examples/grounding/make_dataset.py: other kinds of documents, confusable distractors), with
Acme's system prompt and the reply wrapped in the house format.

Run from the repository root: .venv/bin/python examples/acme/style/make_dataset.py
"""

import importlib.util
import random
from pathlib import Path

from ragserve.ingest.search import Hit
from ragserve.service.prompt import Message, PromptBuilder

SYSTEM_PROMPT = "You are the support assistant of Acme Robotics. Answer briefly and factually."
GREETING = "Hello from Acme Support!"
SIGN_OFF = "Have a great day, the Acme team."
COUNT = 200  # style rows on Acme-like products; as many again from the grounding generator

PRODUCTS = ["Pathfinder P1", "Courier C3", "Lifter L2", "Sweeper S5", "Hauler H7", "Scout X2", "Tugger T4",
            "Picker K9", "Mover M6", "Sorter Q8", "Rover R5", "Carrier N3", "Stacker Z1"]  # fmt: skip

# (topic, fact sentence template, question templates); {p} is the product, {v} the value.
ATTRIBUTES: list[tuple[str, str, list[str], list[str]]] = [
    ("battery", "The {p} runs for {v} hours on one charge.", ["How long does the {p} battery last?",
     "What is the battery life of the {p}?", "How many hours does a {p} run per charge?"],
     ["6", "8", "9", "11", "12", "16"]),
    ("charging", "A full recharge of the {p} takes {v} minutes.", ["How long does the {p} take to charge?",
     "What is the charging time for the {p}?"], ["45", "60", "90", "120"]),
    ("payload", "The {p} carries loads of up to {v} kg.", ["How much can the {p} carry?",
     "What is the maximum payload of the {p}?"], ["25", "40", "80", "150", "300"]),
    ("speed", "The top speed of the {p} is {v} metres per second.", ["How fast is the {p}?",
     "What top speed does the {p} reach?"], ["1.2", "1.5", "2", "2.5"]),
    ("warranty", "The {p} comes with a {v}-year warranty.", ["What warranty does the {p} have?",
     "How long is the {p} under warranty?"], ["1", "2", "3", "5"]),
    ("weight", "The {p} weighs {v} kg without a load.", ["How heavy is the {p}?", "What does the {p} weigh?"],
     ["18", "32", "55", "70"]),
    ("price", "The {p} costs {v} euros per month on a lease.", ["How much does the {p} cost?",
     "What is the lease price of the {p}?"], ["390", "450", "620", "880"]),
    ("delivery", "Orders for the {p} ship within {v} business days.", ["When will my {p} ship?",
     "How quickly is the {p} delivered?"], ["2", "3", "5", "10"]),
]  # fmt: skip
EXTRAS = [
    "The {p} is available in grey and orange.",
    "Firmware updates for the {p} install overnight.",
    "The {p} works indoors only.",
    "The {p} docks itself when its battery is low.",
    "Spare wheels for the {p} are sold in pairs.",
]
UNANSWERED = ["Can the {p} climb stairs?", "Can the {p} open doors by itself?", "Is there a {p} for kids?",
              "Does the {p} come with a remote control?", "Does the {p} have a camera?"]  # fmt: skip


def _hit(product: str, topic: str, sentences: list[str]) -> Hit:
    source = f"products/{product.lower().replace(' ', '-')}.md"
    return Hit(source, f"{product} > {topic.title()}", f"{source}#0", 0.0, " ".join(sentences))


def _house(bullets: list[str]) -> str:
    return "\n".join([GREETING, *(f"- {b}" for b in bullets), SIGN_OFF])


def _not_said(subject: str) -> list[str]:
    return [
        f"Our documents do not say this about the {subject}.",
        "Please ask a support agent, who can check it for you.",
    ]


def _example(rng: random.Random, builder: PromptBuilder) -> dict[str, object]:
    product, other = rng.sample(PRODUCTS, 2)
    (topic, template, questions, values), (topic2, template2, _, values2) = rng.sample(ATTRIBUTES, 2)
    fact = template.format(p=product, v=rng.choice(values))
    extra = rng.choice(EXTRAS).format(p=product)
    second = template2.format(p=product, v=rng.choice(values2))
    distractor = template.format(p=other, v=rng.choice(values))
    blocks = [_hit(product, topic, [fact, extra]), _hit(other, topic, [distractor])]
    if rng.random() < 0.5:
        blocks.append(_hit(product, topic2, [second]))
    rng.shuffle(blocks)
    cite = {id(b): i for i, b in enumerate(blocks, start=1)}
    own = next(b for b in blocks if fact in b.text)
    if rng.random() < 1 / 6:
        question = rng.choice(UNANSWERED).format(p=product)
        bullets = _not_said(product)
    else:
        question = rng.choice(questions).format(p=product)
        bullets = [f"{fact[:-1]} [{cite[id(own)]}]."]
        if rng.random() < 0.5:
            bullets.append(f"{extra[:-1]} [{cite[id(own)]}].")
    messages = builder.build(SYSTEM_PROMPT, blocks, [Message("user", question)], 1).messages
    return {
        "messages": [
            *({"role": m.role, "content": m.content} for m in messages),
            {"role": "assistant", "content": _house(bullets)},
        ]
    }


def _grounding_module():  # type: ignore[no-untyped-def]
    path = Path(__file__).parents[2] / "grounding" / "make_dataset.py"
    spec = importlib.util.spec_from_file_location("grounding_dataset", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    rng = random.Random(7)
    builder = PromptBuilder(lambda messages: 0, 1 << 20, "system")  # the service's default layout
    grounding = _grounding_module()

    def make(done: int) -> dict[str, object]:
        if done < COUNT:
            return _example(rng, builder)
        house = lambda cited: _house([cited] if cited else _not_said("product"))  # noqa: E731
        return grounding.example(rng, builder, SYSTEM_PROMPT, house)  # type: ignore[no-any-return]

    # No two rows share a reply, so no held-out reply is seen in training.
    reply = lambda row: row["messages"][-1]["content"]  # noqa: E731
    grounding.write_unique(Path(__file__).with_name("acme-style.jsonl"), 2 * COUNT, make, reply)


if __name__ == "__main__":
    main()
