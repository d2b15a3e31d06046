"""Dataset checks line by line, the seeded split and its leak check, and the dataset card's format spec."""

import json
from pathlib import Path

import pytest

from ragserve.adapters.dataset import load_dataset, split_dataset
from ragserve.adapters.dataset_card import DatasetCard
from ragserve.adapters.evaluation import _messages, rouge_l
from ragserve.errors import DatasetError


def _row(question: str, reply: str, system: str | None = None) -> str:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": question}, {"role": "assistant", "content": reply}]
    return json.dumps({"messages": messages})


def _words(messages: list[dict[str, str]]) -> int:
    return sum(len(m["content"].split()) for m in messages)


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "style.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_bad_lines_refuse_the_dataset_naming_each_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            _row("q1", "a1"),
            "{not json",
            json.dumps({"prompt": "x"}),
            json.dumps({"messages": [{"role": "robot", "content": "x"}]}),
            json.dumps({"messages": [{"role": "user", "content": "q"}]}),
            _row("q2", "   "),
            json.dumps(
                {"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]}
            ),
            json.dumps({"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "a"}]}),
        ],
    )
    with pytest.raises(DatasetError) as info:
        load_dataset(path, _words, 100)
    message = str(info.value)
    assert "7 bad lines" in message
    for expected in ("line 2: not JSON", 'line 3: not an object with a "messages" list',
                     "line 4: messages[0].role is 'robot'", "line 5: no assistant turn at the end",
                     "line 6: the assistant turn is empty", "line 7: no user turn",
                     "line 8: messages[0].content is missing or not a string"):  # fmt: skip
        assert expected in message


def test_duplicates_and_overlong_rows_are_dropped_and_reported(tmp_path: Path) -> None:
    path = _write(
        tmp_path, [_row("q1", "a1"), _row("q1", "a1"), _row("q2 " + "word " * 50, "a2"), _row("q3", "a3")]
    )
    report = load_dataset(path, _words, 20)
    assert [e.line for e in report.examples] == [1, 4]
    assert [(p.line, p.action) for p in report.problems] == [(2, "dropped"), (3, "dropped")]
    assert "exact duplicate of line 1" in report.problems[0].problem
    assert "over 20" in report.problems[1].problem
    assert report.to_json()["usable"] == 2


def test_the_split_is_seeded_and_recorded_lines_reproduce_it(tmp_path: Path) -> None:
    path = _write(tmp_path, [_row(f"question {i}", f"answer {i}") for i in range(50)])
    report = load_dataset(path, _words, 100)
    train, held = split_dataset(report, 0.2, seed=3)
    assert len(held) == 10 and len(train) == 40
    assert split_dataset(load_dataset(path, _words, 100), 0.2, seed=3)[1] == held
    assert split_dataset(load_dataset(path, _words, 100), 0.2, seed=4)[1] != held
    again_train, again_held = split_dataset(report, 0.2, seed=99, eval_lines=[e.line for e in held])
    assert again_held == held and again_train == train


def test_held_out_rows_that_leak_into_train_are_kept_out_of_eval(tmp_path: Path) -> None:
    # Every prompt appears twice with different replies, and every reply twice with different prompts.
    rows = [_row(f"question {i % 10}", f"answer {i}") for i in range(20)]
    rows += [_row(f"other {i}", f"answer {i}") for i in range(20)]
    rows += [_row(f"unique {i}", f"reply {i}") for i in range(20)]
    report = load_dataset(_write(tmp_path, rows), _words, 100)
    train, held = split_dataset(report, 0.3, seed=0)
    train_prompts = {e.prompt_key for e in train}
    train_replies = {e.reply for e in train}
    assert all(e.prompt_key not in train_prompts and e.reply not in train_replies for e in held)
    leaks = [p for p in report.problems if p.action == "kept in train only"]
    assert leaks and all("also in train" in p.problem for p in leaks)
    assert len(train) + len(held) == 60


def test_a_card_declares_a_regex_and_a_json_schema(tmp_path: Path) -> None:
    dataset = _write(tmp_path, [_row("q", "a")])
    (tmp_path / "reply.schema.json").write_text(json.dumps({"type": "object", "required": ["answer"]}))
    (tmp_path / "style.card.toml").write_text(
        "[format]\nregex = '\\{.*\\}'\njson_schema = \"reply.schema.json\"\n"
        '[prompting]\ninstructions = "Reply in JSON."\nfew_shot = 2\n'
    )
    card = DatasetCard.for_dataset(dataset)
    assert card.format.matches('{"answer": "yes"}')
    assert not card.format.matches('{"other": 1}')  # fails the schema
    assert not card.format.matches('Sure! {"answer": "yes"}')  # fails the regex
    assert card.few_shot == 2 and card.instructions == "Reply in JSON."


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ("[format]\nregex = '(['\n", "format.regex does not compile"),
        ("[format]\nshape = 'x'\n", "format.shape: Extra inputs are not permitted"),
        ('[format]\njson_schema = "missing.json"\n', "is unreadable"),
        ("[prompting\n", "invalid TOML"),
    ],
)
def test_a_bad_card_is_a_clear_error(tmp_path: Path, card: str, message: str) -> None:
    dataset = _write(tmp_path, [_row("q", "a")])
    (tmp_path / "style.card.toml").write_text(card)
    with pytest.raises(DatasetError, match=message):
        DatasetCard.for_dataset(dataset)


def test_rouge_l() -> None:
    assert rouge_l("the battery lasts 9 hours", "the battery lasts 9 hours") == 1.0
    assert rouge_l("", "anything") == 0.0
    assert 0.5 < rouge_l("the battery lasts 9 hours", "battery lasts nine hours") < 0.8


def test_the_four_setups_differ_only_in_instructions_and_shots(tmp_path: Path) -> None:
    path = _write(tmp_path, [_row(f"q{i}", f"a{i}", system="Context: x") for i in range(6)])
    (tmp_path / "style.card.toml").write_text('[prompting]\ninstructions = "Use bullets."\nfew_shot = 2\n')
    card = DatasetCard.for_dataset(path)
    examples = load_dataset(path, _words, 100).examples
    shots, example = examples[:2], examples[5]
    assert _messages("base", example, card, shots) == example.prompt
    assert _messages("adapter", example, card, shots) == example.prompt
    prompted = _messages("prompted", example, card, shots)
    assert prompted[0]["content"] == "Context: x\n\nUse bullets." and prompted[1:] == example.prompt[1:]
    few = _messages("few_shot", example, card, shots)
    assert [m["content"] for m in few[1:]] == ["q0", "a0", "q1", "a1", "q5"]
