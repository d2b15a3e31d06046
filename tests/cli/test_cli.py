"""The CLI as a user drives it: real commands, real index, output formats and error messages."""

import json
import multiprocessing
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.text import Text
from typer.testing import CliRunner

from ragserve.cli.main import app
from ragserve.ingest.index import QdrantIndex
from ragserve.settings import Settings
from tests.support.documents import write

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def indexed(shared_model: None, docs: Path) -> Path:
    write(docs, "warranty.md", "# Warranty\n\nEvery robot carries a 3-year warranty.")
    write(docs, "battery.md", "# Battery\n\nThe battery lasts 14 hours.")
    result = runner.invoke(app, ["reindex", str(docs), "--tenant", "acme"])
    assert result.exit_code == 0, result.output
    return docs


def test_reindex_json_prints_one_object_with_the_documented_keys(shared_model: None, docs: Path) -> None:
    write(docs, "a.md", "Alpha.")
    (docs / "b.md").write_bytes(b"\xff\xfe")
    result = runner.invoke(app, ["reindex", str(docs), "--tenant", "acme", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {
        "added",
        "updated",
        "deleted",
        "unchanged",
        "chunks_embedded",
        "skipped",
        "seconds",
        "index",
        "waiting_for",
    }
    assert (report["added"], report["chunks_embedded"]) == (1, 1)
    assert report["skipped"] == [{"path": "b.md", "reason": "not UTF-8 (invalid byte at offset 0)"}]


def test_reindex_prints_a_summary_for_people(shared_model: None, docs: Path) -> None:
    write(docs, "a.md", "Alpha.")
    result = runner.invoke(app, ["reindex", str(docs), "--tenant", "acme"])
    assert result.exit_code == 0
    assert result.stdout.startswith("added 1, updated 0, deleted 0, unchanged 0; embedded 1 chunks in ")


def test_search_json_returns_cited_hits(indexed: Path) -> None:
    result = runner.invoke(
        app, ["search", "how long does the battery last", "--tenant", "acme", "-k", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    [hit] = out["hits"]
    assert set(hit) == {"source", "heading", "chunk_id", "score", "text"}
    assert (hit["source"], hit["heading"]) == ("battery.md", "Battery")


def test_search_table_for_people(indexed: Path) -> None:
    result = runner.invoke(app, ["search", "warranty", "--tenant", "acme"])
    assert result.exit_code == 0
    assert "warranty.md" in result.stdout


def test_search_queries_file_prints_one_json_line_per_query(indexed: Path, tmp_path: Path) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "q1", "query": "battery hours"}\n\n{"id": 2, "query": "warranty years"}\n')
    result = runner.invoke(app, ["search", "--queries", str(queries), "--tenant", "acme", "-k", "2"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(line["id"], line["query"]) for line in lines] == [("q1", "battery hours"), (2, "warranty years")]
    assert lines[0]["hits"][0]["source"] == "battery.md"
    assert lines[1]["hits"][0]["source"] == "warranty.md"


def test_a_malformed_queries_line_names_the_file_and_line(shared_model: None, tmp_path: Path) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": 1, "query": "ok"}\n{"id": 2, "q": "wrong key"}\n')
    result = runner.invoke(app, ["search", "--queries", str(queries), "--tenant", "acme"])
    assert result.exit_code == 1
    assert f"{queries}:2: expected an object with a string" in result.stderr


def test_stats_json(indexed: Path) -> None:
    result = runner.invoke(app, ["stats", "--tenant", "acme", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"documents": 2, "chunks": 2}


def test_stats_of_an_empty_store_is_zero(shared_model: None) -> None:
    result = runner.invoke(app, ["stats", "--tenant", "acme", "--json"])
    assert json.loads(result.stdout) == {"documents": 0, "chunks": 0}


def test_data_dir_option_and_env_choose_the_store(shared_model: None, docs: Path, tmp_path: Path) -> None:
    write(docs, "a.md", "Alpha.")
    elsewhere = tmp_path / "elsewhere"
    assert (
        runner.invoke(app, ["reindex", str(docs), "--tenant", "acme", "--data-dir", str(elsewhere)]).exit_code
        == 0
    )
    assert (elsewhere / "qdrant-edge" / "catalog.json").is_file()
    default = runner.invoke(app, ["stats", "--tenant", "acme", "--json"])
    assert json.loads(default.stdout)["documents"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reindex", "/no/such/dir", "--tenant", "acme"], "/no/such/dir: no such folder"),
        (["reindex", str(EXAMPLES), "--tenant", "Bad Tenant"], "invalid tenant 'Bad Tenant'"),
        (["search", "anything", "--tenant", "acme"], "nothing is indexed yet"),
    ],
)
def test_errors_are_one_clear_line_not_a_traceback(shared_model: None, args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_an_empty_docs_dir_is_a_clear_error(shared_model: None, docs: Path) -> None:
    result = runner.invoke(app, ["reindex", str(docs), "--tenant", "acme"])
    assert result.exit_code == 1
    assert "holds no documents" in result.stderr


def test_invalid_settings_from_the_environment_are_a_clear_error(
    shared_model: None, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGSERVE_CHUNK_TOKENS", "lots")
    write(docs, "a.md", "A.")
    result = runner.invoke(app, ["reindex", str(docs), "--tenant", "acme"])
    assert result.exit_code == 1
    assert "invalid settings: chunk_tokens" in result.stderr


def test_the_store_open_in_another_process_is_a_clear_error(shared_model: None, settings: Settings) -> None:
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_store, args=(settings, ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        result = runner.invoke(app, ["stats", "--tenant", "acme"])
        assert result.exit_code == 1
        assert "is open in another process" in result.stderr
    finally:
        release.set()
        holder.join(30)


def _hold_store(settings: Settings, ready: Any, release: Any) -> None:
    index = QdrantIndex.connect(settings)
    ready.set()
    release.wait(30)
    index.close()


def test_the_checkouts_data_dir_is_found_from_a_folder_below_it_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = tmp_path / "checkout"
    (checkout / ".data" / "adapters" / "acme-style" / "v1").mkdir(parents=True)  # as `make adapters` left it
    (checkout / "examples").mkdir()
    monkeypatch.delenv("RAGSERVE_DATA_DIR")
    monkeypatch.chdir(checkout / "examples")
    result = runner.invoke(app, ["adapters", "list", "--json"])
    assert result.exit_code == 0, result.output
    assert f"data dir: {checkout / '.data'}" in result.stderr
    assert [row["name"] for row in json.loads(result.stdout)["adapters"]] == ["acme-style"]
    # A `.data` folder that ragserve never used is not taken for one.
    elsewhere = tmp_path / "other"
    (elsewhere / ".data").mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    assert Settings().data_dir != elsewhere / ".data"


def _commands(command: Any) -> list[Any]:
    """A command and every command below it (typer's own copy of click's tree)."""
    below = getattr(command, "commands", {}).values()
    return [command, *(c for sub in below for c in _commands(sub))]


def test_every_help_text_keeps_its_brackets_through_rich_markup() -> None:
    # Typer renders help as Rich markup: an unescaped "[default 8000]" is taken for a tag and vanishes.
    texts = [
        text
        for command in _commands(typer.main.get_command(app))
        for text in [command.help, *(getattr(p, "help", None) for p in command.params)]
        if text
    ]
    assert any("[default 8000]" in Text.from_markup(t).plain for t in texts)
    for text in texts:
        shown = Text.from_markup(text).plain
        assert (shown.count("["), shown.count("]")) == (text.count("["), text.count("]")), text
