"""Writes grounding.jsonl: reading numbered context and stating the fact with its [n], or saying it is not there.

Every example is what the chat service sends vLLM with `[prompt] context = "user"`, laid out by the
service's own PromptBuilder: a system prompt, then the final user turn holding numbered context blocks,
the instruction and the question. The
reply copies the one sentence of the context that answers, ending with that block's number: `... [2].`
When no block answers (one question in five, often because the context holds the same fact about another
product), the reply is the prompt's refusal. The contexts are invented (made-up products, programs,
companies and policies), never a tenant's documents, so the adapter learns a behaviour and no facts.

Run from the repository root: .venv/bin/python examples/grounding/make_dataset.py
"""

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ragserve.ingest.search import Hit
from ragserve.service.prompt import REFUSAL, Message, PromptBuilder

COUNT = 1000
Row = dict[str, object]  # one chat row: {"messages": [...]}
UNANSWERABLE_SHARE = 0.15
SYSTEM_PROMPTS = [
    "You are a helpful support assistant. Answer from the numbered context.",
    "You are the support assistant of {org}. Answer briefly and factually.",
    "You are the friendly assistant of {org}. Answer briefly.",
    "You answer customers' questions about {org}'s products.",
]
ORGS = ["Borealis Labs", "Quillsoft", "Tandem Freight", "Marigold Foods", "Vantor Systems", "Kestrel Bikes",
        "Lumen Clinics", "Oakridge Tools", "Halcyon Travel", "Nimbus Data", "Cobalt Energy", "Fernway Books"]  # fmt: skip
PRODUCTS = ["Aster 3", "Brio X", "Cirrus 12", "Delta Pro", "Ember S", "Fjord 2", "Gale M4", "Helix Mini",
            "Ion 7", "Juno Air", "Kite R", "Lynx 5", "Mistral Q", "Nova Flex", "Orca T2", "Pike 9"]  # fmt: skip
PROGRAMS = ["tallyd", "quorra", "zephctl", "brindle", "mossdb", "pelican", "runefs", "skiff", "vantage",
            "wicker", "yarrowd", "korbit"]  # fmt: skip
PEOPLE = ["Ana Ribeiro", "Tomas Lind", "Priya Nair", "Jonas Weber", "Mei Chen", "Omar Haddad", "Sofia Rossi",
          "Kwame Mensah", "Elena Petrova", "Lucas Martin"]  # fmt: skip
CITIES = ["Ghent", "Tampere", "Porto Alegre", "Kraków", "Leeds", "Bilbao", "Graz", "Aarhus", "Lyon", "Turin"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]


@dataclass(frozen=True)
class Fact:
    """One attribute of one subject: the sentence a document states it in, the same as a `key: value`
    field, and the ways to ask for it."""

    topic: str
    key: str
    value: str
    sentence: str
    questions: list[str]


def _product(p: str, r: random.Random) -> list[Fact]:
    price, kg, h = (
        r.choice([19, 49, 129, 349, 899, 1450]),
        r.choice([0.8, 2.5, 7, 14, 32, 110]),
        r.choice([6, 9, 12, 20, 36]),
    )
    y, mins, c = (
        r.choice([1, 2, 3, 5]),
        r.choice([25, 40, 75, 120]),
        r.choice(["graphite", "sand", "teal", "red", "white"]),
    )
    return [
        Fact("price", "Price", f"{price} EUR", f"The {p} costs {price} euros.", [f"How much is the {p}?",
             f"What does a {p} cost?", f"What is the price of the {p}?"]),
        Fact("weight", "Weight", f"{kg} kg", f"The {p} weighs {kg} kg.", [f"How heavy is the {p}?",
             f"What is the weight of the {p}?"]),
        Fact("battery", "Battery life", f"{h} hours per charge", f"On one charge the {p} runs for {h} hours.",
             [f"How long does the {p} battery last?", f"How many hours does the {p} run before it needs charging?"]),
        Fact("warranty", "Warranty", f"{y} years", f"The {p} is covered by a {y}-year warranty.",
             [f"What warranty comes with the {p}?", f"For how long is the {p} guaranteed?"]),
        Fact("charging", "Charging time", f"{mins} minutes", f"A full charge of the {p} takes {mins} minutes.",
             [f"How long does the {p} take to charge?", f"What is the charging time of the {p}?"]),
        Fact("colour", "Colour", c, f"The {p} is sold in {c} only.", [f"Which colour does the {p} come in?",
             f"What colours can I get the {p} in?"]),
    ]  # fmt: skip


def _program(p: str, r: random.Random) -> list[Fact]:
    setting = f"{r.choice(['max', 'min', 'default', 'idle'])}_{r.choice(['workers', 'connections', 'buffer_mb', 'retries', 'timeout_s'])}"
    tool = f"{p}-{r.choice(['check', 'fsck', 'verify', 'scan'])}"
    feature, port = (
        r.choice(["TLS 1.3", "IPv6", "Unix sockets", "HTTP/2"]),
        r.choice([2375, 4317, 5433, 6380, 8088, 9042]),
    )
    conf, default = f"/etc/{p}/{p}.{r.choice(['conf', 'toml', 'yaml'])}", r.choice([4, 8, 16, 30, 64, 256])
    version, log = (
        f"{r.choice([2, 3, 4])}.{r.choice([1, 4, 7, 9])}",
        f"/var/log/{p}/{r.choice(['main', 'server', 'events'])}.log",
    )
    return [
        Fact("port", "Default port", str(port), f"By default {p} listens on TCP port {port}.",
             [f"Which port does {p} use by default?", f"What port number does {p} listen on?"]),
        Fact("config", "Configuration file", conf, f"{p} reads its settings from {conf}.",
             [f"Where is the configuration file of {p}?", f"Which file holds {p}'s settings?"]),
        Fact("setting", setting, f"{default} (default)", f"The {setting} setting of {p} defaults to {default}.",
             [f"What is the default value of {setting} in {p}?", f"What does {setting} default to in {p}?"]),
        Fact("tool", "Data check", f"the {tool} program", f"The {tool} program checks {p}'s data files for damage.",
             [f"Which program checks {p}'s data files for damage?", f"What tool verifies {p}'s data files?"]),
        Fact("version", f"{feature} support", f"since version {version}", f"{p} {version} added support for {feature}.",
             [f"In which version did {p} add {feature} support?", f"Since which version does {p} support {feature}?"]),
        Fact("log", "Log file", log, f"{p} writes its log to {log}.",
             [f"Where does {p} write its log?", f"What is the path of {p}'s log file?"]),
    ]  # fmt: skip


def _company(o: str, r: random.Random) -> list[Fact]:
    d1, d2 = sorted(r.sample(range(len(DAYS)), 2))
    year, city, ceo, staff = (
        r.choice(range(1968, 2022)),
        r.choice(CITIES),
        r.choice(PEOPLE),
        r.choice([12, 85, 240, 1300]),
    )
    hours = f"{DAYS[d1]} to {DAYS[d2]}, {r.choice([7, 8, 9])}:00 to {r.choice([16, 17, 18, 20])}:00"
    days, fee = r.choice([14, 30, 45, 60, 90]), r.choice([5, 10, 12, 15, 20])
    return [
        Fact("founded", "Founded", str(year), f"{o} was founded in {year}.", [f"When was {o} started?",
             f"In what year did {o} begin?"]),
        Fact("city", "Head office", city, f"{o} has its head office in {city}.", [f"Where is {o} based?",
             f"In which city is the head office of {o}?"]),
        Fact("ceo", "Chief executive", ceo, f"The chief executive of {o} is {ceo}.", [f"Who leads {o}?",
             f"Who is the CEO of {o}?"]),
        Fact("staff", "Employees", str(staff), f"{o} employs {staff} people.", [f"How many people work at {o}?",
             f"What is the headcount of {o}?"]),
        Fact("hours", "Support hours", hours, f"{o} support answers from {hours}.",
             [f"When can I reach {o} support?", f"What are the support hours of {o}?"]),
        Fact("returns", "Returns", f"within {days} days of delivery", f"{o} accepts returns within {days} days of delivery.",
             [f"How long do I have to return an order to {o}?", f"What is the return window at {o}?"]),
        Fact("fee", "Late cancellation fee", f"{fee} percent", f"{o} charges a {fee} percent fee on late cancellations.",
             [f"What fee does {o} charge for a late cancellation?", f"How much is the late cancellation fee at {o}?"]),
    ]  # fmt: skip


KINDS = [(PRODUCTS, _product, "products/{s}.md"), (PROGRAMS, _program, "manual/{s}.html"),
         (ORGS, _company, "about/{s}.md")]  # fmt: skip


def _pronoun(sentence: str, subject: str) -> str:
    """The sentence with its subject as "it", as a document's later sentences name it."""
    text = re.sub(rf"\b(?:[Tt]he )?{re.escape(subject)}'s\b", "its", sentence)
    text = re.sub(rf"\b(?:[Tt]he )?{re.escape(subject)}\b(?![-/.])", "it", text)
    return text[0].upper() + text[1:]


def _block(subject: str, path: str, facts: list[Fact], title: str, r: random.Random) -> tuple[Hit, list[str]]:
    """A chunk as retrieval returns it: a few facts about one subject, in prose that names the subject once
    or every time, or as `key: value` fields under the subject's heading. Also each fact's text in it."""
    source = path.format(s=subject.lower().replace(" ", "-"))
    style = r.choice(["named", "pronoun", "fields"])
    if style == "fields":
        lines = [f"{f.key}: {f.value}" for f in facts]
        text = "\n".join(f"- {line}" for line in lines)
    else:
        lines = [f.sentence if style == "named" or i == 0 else _pronoun(f.sentence, subject)
                 for i, f in enumerate(facts)]  # fmt: skip
        text = " ".join(lines)
    return Hit(source, f"{subject} > {title}", f"{source}#0", 0.0, text), lines


def example(
    r: random.Random,
    builder: PromptBuilder,
    system_prompt: str | None = None,
    reply: Callable[[str | None], str] = lambda cited: cited or REFUSAL,
) -> dict[str, object]:
    """One chat row. `reply` turns the cited text (None when no block answers) into the reply, so a tenant's
    style dataset can wrap the same skill in its own format."""
    names, make, path = r.choice(KINDS)
    subject, other, third = r.sample(names, 3)
    own, others = make(subject, r), make(other, r)
    asked = r.choice(own)
    answerable = r.random() >= UNANSWERABLE_SHARE
    # The answer's block holds the asked fact at any place among other facts of its subject; a distractor
    # holds facts of another subject (half the time the same topic: the confusable case), and a third.
    rest = [f for f in own if f is not asked]
    r.shuffle(rest)
    near = rest[: r.randint(2, 4)]
    if answerable:
        near.insert(r.randint(0, len(near)), asked)
    same_topic = next(f for f in others if f.topic == asked.topic)
    distractor = r.sample([f for f in others if f is not same_topic], r.randint(1, 3))
    if r.random() < 0.5:
        distractor.insert(r.randint(0, len(distractor)), same_topic)
    answer_block = _block(subject, path, near, r.choice(["Overview", "Details", asked.key]), r)
    made = [answer_block, _block(other, path, distractor, r.choice(["Overview", "Details"]), r)]
    if r.random() < 0.6:
        made.append(_block(third, path, r.sample(make(third, r), 3), "Overview", r))
    r.shuffle(made)
    blocks = [hit for hit, _ in made]
    system = system_prompt or r.choice(SYSTEM_PROMPTS).format(org=r.choice(ORGS))
    messages = builder.build(system, blocks, [Message("user", r.choice(asked.questions))], 1).messages
    cited = None
    if answerable:
        text = answer_block[1][near.index(asked)]
        cited = f"{text.removesuffix('.')} [{made.index(answer_block) + 1}]."
    return {"messages": [*({"role": m.role, "content": m.content} for m in messages),
                         {"role": "assistant", "content": reply(cited)}]}  # fmt: skip


def write_unique(out: Path, count: int, make: Callable[[int], Row], key: Callable[[Row], str]) -> None:
    """`count` rows, `make(rows_so_far)` each, no two with the same key (so no held-out row is seen in
    training), written as JSON Lines."""
    seen: set[str] = set()
    lines: list[str] = []
    while len(lines) < count:
        row = make(len(lines))
        if key(row) not in seen:
            seen.add(key(row))
            lines.append(json.dumps(row, ensure_ascii=False))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} examples to {out}")


def main() -> None:
    rng = random.Random(11)
    # The layout the bundled adapter was trained on: the context in the user turn. No budget to fit.
    builder = PromptBuilder(lambda messages: 0, 1 << 20, "user")
    out = Path(__file__).with_name("grounding.jsonl")
    write_unique(out, COUNT, lambda _: example(rng, builder), lambda row: json.dumps(row["messages"][-2:]))  # type: ignore[index]


if __name__ == "__main__":
    main()
