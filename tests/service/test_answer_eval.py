"""`ragserve eval answers` for real: labelled questions through the chat API, against the session's vLLM."""

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ragserve.cli.main import app
from ragserve.engine.vllm_process import VllmProcess
from tests.service.conftest import KEYS, Service, tenant_docs

runner = CliRunner()

QUESTIONS: list[dict[str, Any]] = [
    {"id": "q1", "question": "How many days do I have to report a damaged bag?", "answers": [r"\b14\b"],
     "sources": ["refunds.md"]},
    {"id": "q2", "question": "What warranty do the grinders have?", "answers": [r"1.year|one.year"],
     "sources": ["warranty.md"]},
    {"id": "q3", "question": "Who is the CEO of Globex?", "unanswerable": True},
]  # fmt: skip
METRICS = {"answer_accuracy", "refusal_accuracy", "source_retrieved", "source_cited", "supported",
           "latency_p50_ms", "prompt_tokens_mean"}  # fmt: skip


def _qa(folder: Path, rows: list[dict[str, Any]] = QUESTIONS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _setups(folder: Path, text: str) -> Path:
    path = folder / "setups.toml"
    path.write_text(text)
    return path


def _run(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["eval", "answers", *args, "--json"])
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def test_eval_against_a_running_service_writes_the_report_and_the_metrics(
    service: Service, tmp_path: Path
) -> None:
    qa = _qa(tmp_path)
    setups = _setups(tmp_path, "[setups.defaults]\n[setups.k1]\nrequest = { k = 1, max_tokens = 24 }\n")
    out = _run(str(qa), "--tenant", "globex", "--url", service.url, "--key", KEYS["globex"],
               "--setups", str(setups), "--out", str(tmp_path / "report"))  # fmt: skip
    assert out["tenant"] == "globex" and out["questions"] == 3
    assert set(out["setups"]) == {"defaults", "k1"}
    for metrics in out["setups"].values():
        assert set(metrics) >= METRICS
        assert metrics["answerable"] == 2 and metrics["unanswerable"] == 1 and metrics["errors"] == 0
    assert out["setups"]["defaults"]["source_retrieved"] == 1.0
    report = json.loads((tmp_path / "report" / "answers.json").read_text())
    first = report["results"]["defaults"][0]
    assert first["id"] == "q1" and first["answer"] and first["retrieved"][0] == "refunds.md"
    assert {"matched", "supported", "refused", "source_cited", "latency_ms", "prompt_tokens"} <= set(first)
    assert report["results"]["k1"][0]["retrieved"] == ["refunds.md"]  # k=1 reached the service
    markdown = (tmp_path / "report" / "answers.md").read_text()
    assert "| q3 | refusal expected |" in markdown
    assert (tmp_path / "report" / "answers.png").read_bytes()[:4] == b"\x89PNG"


def test_retrieval_only_ranks_the_expected_sources_without_generating(
    service: Service, tmp_path: Path
) -> None:
    out = _run(str(_qa(tmp_path)), "--tenant", "globex", "--url", service.url, "--key", KEYS["globex"],
               "--retrieval-only")  # fmt: skip
    metrics = out["setups"]["retrieval"]
    assert metrics["questions"] == 2
    assert metrics["hit_at_5"] == 1.0 and 0.5 <= metrics["mrr_at_5"] <= 1.0


def test_with_a_config_it_starts_what_it_needs_and_compares_prompt_layouts(
    vllm: VllmProcess,
    tmp_path: Path,
    llm_in_data_dir: Path,
    shared_model: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAGSERVE_VLLM_URL", vllm.url)  # the session's vLLM, not a second one
    docs = tenant_docs(tmp_path / "docs")
    config = tmp_path / "ragserve.toml"
    config.write_text(f'[model]\nmax_tokens = 24\n\n[tenants.globex]\napi_key_sha256 = "{"0" * 64}"\n'
                      f'docs = "{docs["globex"]}"\n')  # fmt: skip
    setups = _setups(tmp_path, '[setups.user]\n[setups.system]\nprompt = { context = "system" }\n')
    out = _run(str(_qa(tmp_path)), "--tenant", "globex", "--config", str(config), "--setups", str(setups))
    assert set(out["setups"]) == {"user", "system"}
    assert all(m["errors"] == 0 and m["source_retrieved"] == 1.0 for m in out["setups"].values())


def test_a_setup_that_changes_the_served_config_needs_a_config(service: Service, tmp_path: Path) -> None:
    setups = _setups(tmp_path, '[setups.system]\nprompt = { context = "system" }\n')
    result = runner.invoke(app, ["eval", "answers", str(_qa(tmp_path)), "--tenant", "globex", "--url",
                                 service.url, "--key", KEYS["globex"], "--setups", str(setups)])  # fmt: skip
    assert result.exit_code == 1
    assert "changes the served config; run it with --config" in result.output


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "not JSON"),
        ('{"id": "x", "question": "?", "answers": ["(unclosed"]}', "not a valid regex"),
        ('{"id": "x", "question": "?"}', "needs at least one accepted answer"),
        ('{"id": "x", "question": "?", "answers": ["a"], "unanswerable": true}', "takes no answers"),
        ('{"id": "x", "question": "?", "answers": ["a"], "extra": 1}', "extra: Extra inputs"),
        ('{"id": "a", "question": "?", "answers": ["a"]}', "id 'a' is used twice"),
    ],
)
def test_a_bad_qa_line_is_a_one_line_error_naming_the_file_and_line(
    tmp_path: Path, line: str, problem: str
) -> None:
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"id": "a", "question": "Fine?", "answers": ["yes"]}\n' + line + "\n")
    result = runner.invoke(app, ["eval", "answers", str(qa), "--tenant", "t", "--url", "http://127.0.0.1:9",
                                 "--key", "k"])  # fmt: skip
    assert result.exit_code == 1
    assert f"{qa}:2: " in result.output and problem in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 2


def test_a_setup_naming_a_missing_adapter_fails_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGSERVE_VLLM_URL", "http://127.0.0.1:9")  # never reached
    docs = tenant_docs(tmp_path / "docs")
    config = tmp_path / "ragserve.toml"
    config.write_text(f'[tenants.globex]\napi_key = "k"\ndocs = "{docs["globex"]}"\n')
    setups = _setups(tmp_path, '[setups.ok]\n[setups.missing]\ntenant = { adapter = "nope" }\n')
    result = runner.invoke(app, ["eval", "answers", str(_qa(tmp_path)), "--tenant", "globex", "--config",
                                 str(config), "--setups", str(setups)])  # fmt: skip
    assert result.exit_code == 1
    assert "no adapter named 'nope'" in result.output and "Traceback" not in result.output
