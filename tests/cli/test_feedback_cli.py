"""`ragserve feedback export` as an operator runs it on what the service stored: drafts that `eval answers`
and the adapter dataset loader take, warnings for what it skips, and errors that name the tenant and file."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert
from typer.testing import CliRunner

from ragserve.adapters.dataset import load_dataset
from ragserve.cli.main import app
from ragserve.errors import DatasetError
from ragserve.evaluation.qa import load_qa
from ragserve.service.feedback.record import FeedbackRecord
from ragserve.service.feedback.store import FeedbackStore
from ragserve.settings import Settings
from ragserve.state.database import Database
from ragserve.state.schema import feedback as feedback_table
from ragserve.state.tenants import TenantStore
from tests.service.test_feedback_store import feedback

runner = CliRunner()
QUESTION = "How long does its battery last?\u2028On one charge."  # U+2028: a line break to str.splitlines


@pytest.fixture
def stored(data_dir: Path) -> dict[str, FeedbackRecord]:
    """acme's feedback as the service stores it: a right answer to a follow-up question, a refusal and a
    wrong answer."""
    store = FeedbackStore.of(Settings(data_dir=data_dir))
    TenantStore(Database.of(Settings(data_dir=data_dir))).create("acme", {}, None, "api")
    conversation = [
        {"role": "user", "content": "Which robot is yours?"},
        {"role": "assistant", "content": "The Roadrunner R2 [1]."},
        {"role": "user", "content": QUESTION},
    ]
    right = "The battery lasts 14 hours on one charge [1]."
    return {
        "up": store.append("acme", feedback(answer=right, messages=conversation)),
        "refusal": store.append("acme", feedback(answer="I don't know.", citations=[])),
        "down": store.append("acme", feedback("down", answer="It lasts 2 hours [2].", comment="14 hours")),
    }


def _export(*args: str) -> Any:
    return runner.invoke(app, ["feedback", "export", "--tenant", "acme", *args])


def test_export_writes_qa_rows_that_eval_answers_loads(
    stored: dict[str, FeedbackRecord], tmp_path: Path
) -> None:
    result = _export("--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "up-votes as draft questions: 2 (1 unanswerable; 1 asked after earlier turns" in result.stdout
    items = {item.id: item for item in load_qa(tmp_path / "out" / "qa.jsonl")}
    assert set(items) == {stored["up"].id, stored["refusal"].id}
    up = items[stored["up"].id]
    assert up.question == QUESTION and up.sources == ["battery.md"]
    assert up.match(stored["up"].answer) and up.match("the battery lasts 14 hours on one charge.")
    assert items[stored["refusal"].id].unanswerable


def test_export_writes_the_down_votes_as_candidates_without_the_rejected_answer_as_a_reply(
    stored: dict[str, FeedbackRecord], tmp_path: Path
) -> None:
    assert _export("--out", str(tmp_path)).exit_code == 0
    path = tmp_path / "adapter-candidates.jsonl"
    (candidate,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert candidate["feedback_id"] == stored["down"].id
    assert candidate["rejected"] == "It lasts 2 hours [2]." and candidate["comment"] == "14 hours"
    assert candidate["messages"] == [{"role": "user", "content": "How long does the battery last?"}]
    with pytest.raises(DatasetError, match="line 1: no assistant turn at the end"):
        load_dataset(path, lambda messages: 1, 512)
    candidate["messages"].append({"role": "assistant", "content": "It lasts 14 hours on one charge [1]."})
    path.write_text(json.dumps(candidate) + "\n")  # what the reviewer does; the training loader takes it
    assert load_dataset(path, lambda messages: 1, 512).examples[0].reply.startswith("It lasts 14")


def test_json_output_and_the_default_folder(
    stored: dict[str, FeedbackRecord], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = _export("--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    counts = {k: report[k] for k in ("records", "qa_rows", "unanswerable", "candidates")}
    assert counts == {"records": 3, "qa_rows": 2, "unanswerable": 1, "candidates": 1}
    assert report["qa_path"] == "feedback-acme/qa.jsonl"
    assert (tmp_path / "feedback-acme" / "qa.jsonl").is_file()
    assert report["skipped"] == [] and report["follow_ups"] == [stored["up"].id]


def test_clear_deletes_what_was_exported_and_nothing_else(
    stored: dict[str, FeedbackRecord], data_dir: Path, tmp_path: Path
) -> None:
    result = _export("--out", str(tmp_path), "--clear")
    assert result.exit_code == 0, result.output
    assert "cleared 3 exported records from the store" in result.stdout
    assert (tmp_path / "qa.jsonl").read_text().count("\n") == 2
    again = _export("--out", str(tmp_path / "again"))
    assert again.exit_code == 1 and "no feedback for tenant 'acme'" in again.stderr


@pytest.mark.parametrize(
    ("tenant", "message"),
    [
        ("initech", "error: no feedback for tenant 'initech' in sqlite:///{data}/state.db "
         "(tenants with feedback: acme)"),
        ("../acme", "error: invalid tenant '../acme'"),
    ],
)  # fmt: skip
def test_an_unknown_tenant_is_an_error_naming_it_and_the_file(
    stored: dict[str, FeedbackRecord], data_dir: Path, tenant: str, message: str
) -> None:
    result = runner.invoke(app, ["feedback", "export", "--tenant", tenant])
    assert result.exit_code == 1
    assert message.format(data=data_dir) in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_a_store_with_no_readable_record_is_an_error(
    stored: dict[str, FeedbackRecord], data_dir: Path
) -> None:
    database = Database.of(Settings(data_dir=data_dir))
    with database.begin() as connection:  # as an older or newer ragserve might have stored it
        connection.execute(delete(feedback_table))
        connection.execute(
            insert(feedback_table).values(
                id="fb-bad", tenant="acme", created_at=datetime.now(UTC), size=15, record={"id": "fb-bad"}
            )
        )
    result = _export()
    assert result.exit_code == 1
    assert "no readable feedback for tenant 'acme' in sqlite:///" in result.stderr
    assert "(1 records skipped: fb-bad: " in " ".join(result.stderr.split())
