"""`ragserve adapters train | eval | list | assign` for real: PEFT training on the CPU, eval against vLLM."""

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from ragserve.adapters.assignments import AssignmentStore
from ragserve.adapters.validation import SERVED_TARGET_MODULES
from ragserve.cli.main import app
from ragserve.engine.vllm_process import VllmProcess
from ragserve.launch import registration
from ragserve.settings import Settings
from ragserve.state.database import Database
from tests.service.conftest import KEYS, Service, tenant_docs

runner = CliRunner()
STYLE = Path(__file__).resolve().parents[2] / "examples" / "acme" / "style"


def _dataset(folder: Path, rows: int = 20) -> Path:
    """The first rows of the demo style dataset, with its card."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = (STYLE / "acme-style.jsonl").read_text().splitlines()[:rows]
    path = folder / "style.jsonl"
    path.write_text("\n".join(lines) + "\n")
    shutil.copy(STYLE / "acme-style.card.toml", folder / "style.card.toml")
    return path


def _train(dataset: Path, name: str = "tiny") -> dict[str, Any]:
    args = ["adapters", "train", str(dataset), "--name", name, "--epochs", "1", "--rank", "4",
            "--eval-fraction", "0.25", "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def _config(root: Path) -> Path:
    docs = tenant_docs(root / "docs")
    lines = [f'[tenants.{t}]\napi_key = "{KEYS[t]}"\ndocs = "{folder}"\n' for t, folder in docs.items()]
    path = root / "ragserve.toml"
    path.write_text("\n".join(lines))
    return path


@pytest.fixture(scope="module")
def trained_once(
    tmp_path_factory: pytest.TempPathFactory, base_model_dir: Path
) -> tuple[dict[str, Any], Path]:
    """tiny@v1, trained by the real command once for the module, in a data dir of its own: its output, and
    its registry."""
    root = tmp_path_factory.mktemp("trained")
    data = root / "data"
    data.mkdir()
    (data / "models").symlink_to(base_model_dir.parent, target_is_directory=True)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAGSERVE_DATA_DIR", str(data))
        env.delenv("RAGSERVE_ADAPTERS_DIR", raising=False)
        out = _train(_dataset(root / "ds"))
    return out, data / "adapters"


@pytest.fixture
def trained(
    trained_once: tuple[dict[str, Any], Path], llm_in_data_dir: Path, data_dir: Path
) -> dict[str, Any]:
    """This test's own data dir holds tiny@v1, exactly as the command wrote it."""
    out, registry = trained_once
    shutil.copytree(registry, data_dir / "adapters", symlinks=True)
    return out


def test_train_writes_a_version_with_its_card(
    trained: dict[str, Any], data_dir: Path, tmp_path: Path
) -> None:
    assert trained["adapter"] == "tiny@v1"
    folder = data_dir / "adapters" / "tiny" / "v1"
    assert {"adapter_config.json", "adapter_model.safetensors", "card.json"} <= {
        p.name for p in folder.iterdir()
    }
    card = json.loads((folder / "card.json").read_text())
    assert card["base_model"] == "smollm2-135m"
    assert card["dataset"]["rows"] == 20 and card["dataset"]["train"] + card["dataset"]["eval"] == 20
    assert len(card["dataset"]["eval_lines"]) == card["dataset"]["eval"] == 5
    assert len(card["dataset"]["sha256"]) == 64
    assert card["training"]["rank"] == 4 and card["training"]["epochs"] == 1
    assert card["training"]["target_modules"] == list(SERVED_TARGET_MODULES)
    assert card["created_at"] and card["eval"] is None
    again = _train(_dataset(tmp_path / "ds"))
    assert again["adapter"] == "tiny@v2"


def test_eval_compares_four_setups_and_scores_the_card(
    trained: dict[str, Any], vllm: VllmProcess, data_dir: Path
) -> None:
    result = runner.invoke(
        app, ["adapters", "eval", "tiny", "--vllm-url", vllm.url, "--max-tokens", "24", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for setup in ("adapter", "prompted", "few_shot", "base"):
        row = report[setup]
        assert 0 <= row["format_adherence"] <= 1 and 0 <= row["similarity"] <= 1
        assert row["prompt_tokens"] > 0 and row["latency_p50_ms"] > 0 and row["examples"] == 5
    assert (
        report["few_shot"]["prompt_tokens"]
        > report["prompted"]["prompt_tokens"]
        > report["base"]["prompt_tokens"]
    )
    assert report["adapter"]["prompt_tokens"] == report["base"]["prompt_tokens"]
    folder = data_dir / "adapters" / "tiny" / "v1"
    for name in ("eval.md", "eval.json", "eval.png"):
        assert (folder / "eval" / name).stat().st_size > 0
    assert (folder / "eval" / "eval.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = json.loads((folder / "card.json").read_text())
    assert card["eval"]["adapter"]["format_adherence"] == report["adapter"]["format_adherence"]
    assert "tiny--v1" not in {m["id"] for m in httpx.get(f"{vllm.url}/v1/models").json()["data"]}


def test_assign_without_a_service_persists_and_list_shows_it(
    trained: dict[str, Any], tmp_path: Path, data_dir: Path
) -> None:
    config = _config(tmp_path)
    result = runner.invoke(app, ["adapters", "assign", "acme", "tiny@v1", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "acme now uses tiny@v1 (from the service's next start)" in result.stdout
    assert AssignmentStore(Database.of(Settings(data_dir=data_dir))).read() == {"acme": "tiny@v1"}
    listing = json.loads(runner.invoke(app, ["adapters", "list", "--json"]).stdout)
    (entry,) = listing["adapters"]
    assert entry["name"] == "tiny"
    assert [(v["version"], v["tenants"]) for v in entry["versions"]] == [("v1", ["acme"])]
    table = runner.invoke(app, ["adapters", "list"])
    assert "tiny@v1" in table.output and "acme" in table.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["adapters", "assign", "acme", "nope"], "no adapter named 'nope'"),
        (["adapters", "assign", "nobody", "tiny"], "has no tenant 'nobody'"),
        (["adapters", "assign", "acme", "../tiny"], "is unsafe"),
        (["adapters", "eval", "nope"], "no adapter named 'nope'"),
    ],
)
def test_cli_errors_are_one_line(
    trained: dict[str, Any], tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, [*args, "--config", str(_config(tmp_path))] if "assign" in args else args)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_train_refuses_a_bad_dataset_naming_the_lines(tmp_path: Path, llm_in_data_dir: Path) -> None:
    dataset = _dataset(tmp_path / "ds")
    with dataset.open("a") as f:
        f.write(
            '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}]}\n{oops\n'
        )
    result = runner.invoke(app, ["adapters", "train", str(dataset), "--name", "bad"])
    assert result.exit_code == 1
    assert "2 bad lines" in result.output and "line 21: the assistant turn is empty" in result.output
    assert "line 22: not JSON" in result.output and "Traceback" not in result.output


def test_assign_with_the_service_running_goes_through_its_admin_api(
    service: Service, adapters_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registration.record(service.data_dir, service.url)
    monkeypatch.setenv("RAGSERVE_ADMIN_KEY", "admin-key")
    args = ["adapters", "assign", "globex", "acme-style@v2", "--data-dir", str(service.data_dir)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "globex now uses acme-style@v2 (served as acme-style--v2)" in result.stdout
    models = httpx.get(f"{service.url}/v1/models", headers={"Authorization": f"Bearer {KEYS['globex']}"})
    assert "acme-style--v2" in {m["id"] for m in models.json()["data"]}
    result = runner.invoke(app, ["adapters", "assign", "globex", "", "--data-dir", str(service.data_dir)])
    assert result.exit_code == 0 and "globex now uses the base model" in result.stdout
