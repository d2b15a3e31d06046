import asyncio
import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragserve.cli.main import app
from ragserve.errors import AuthError, ConfigError
from ragserve.service.config import ServeConfig, load_config
from ragserve.service.tenants import TenantDirectory
from ragserve.state.database import Database
from ragserve.state.tenants import TenantStore


def _write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "docs").mkdir(exist_ok=True)
    path = tmp_path / "ragserve.toml"
    path.write_text(body)
    return path


GOOD = f"""
[model]
base = "smollm2-135m"
[tenants.acme]
api_key = "k1"
docs = "docs"
[tenants.globex]
api_key_sha256 = "{hashlib.sha256(b"k2").hexdigest()}"
docs = "docs"
"""


def test_a_good_config_resolves_docs_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, GOOD))
    assert config.tenants["acme"].docs == (tmp_path / "docs").resolve()
    assert config.model.base == "smollm2-135m"


def _directory(database: Database, config: ServeConfig) -> TenantDirectory:
    """The config's tenants written to the state database, as the service does at start."""
    directory = TenantDirectory(TenantStore(database))
    directory.sync_config(config)
    return directory


def test_keys_select_tenants_plain_or_hashed(tmp_path: Path, database: Database) -> None:
    keys = _directory(database, load_config(_write(tmp_path, GOOD)))
    assert asyncio.run(keys.authenticate("Bearer k1")).name == "acme"
    assert asyncio.run(keys.authenticate("Bearer k2")).name == "globex"
    for bad in (None, "", "Basic k1", "Bearer nope"):
        with pytest.raises(AuthError):
            asyncio.run(keys.authenticate(bad))


def test_a_key_may_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database: Database
) -> None:
    body = '[tenants.acme]\napi_key_env = "ACME_KEY"\ndocs = "docs"\n'
    with pytest.raises(ConfigError, match="ACME_KEY is not set"):
        load_config(_write(tmp_path, body))
    monkeypatch.setenv("ACME_KEY", "secret")
    keys = _directory(database, load_config(_write(tmp_path, body)))
    assert asyncio.run(keys.authenticate("Bearer secret")).name == "acme"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '[tenants.acme]\napi_key = "k"\ndocs = "docs"\ncolour = "red"\n',
            "tenants.acme.colour: Extra inputs",
        ),
        ('[tenants.acme]\napi_key = "k"\napi_key = "j"\ndocs = "docs"\n', "invalid TOML"),
        ('[tenants.acme]\napi_key = "k"\ndocs = "missing"\n', "is not a folder"),
        ('[tenants.acme]\ndocs = "docs"\n', "exactly one of api_key"),
        ('[tenants."Bad Name"]\napi_key = "k"\ndocs = "docs"\n', "invalid tenant"),
        (
            '[tenants.a]\napi_key = "k"\ndocs = "docs"\n[tenants.b]\napi_key = "k"\ndocs = "docs"\n',
            "share one",
        ),
        ("[model]\nbase = 'x'\n", "tenants: Field required"),
        (
            '[tenants.acme]\napi_key = "k"\ndocs = "docs"\non_unsupported = "shrug"\n',
            "tenants.acme.on_unsupported: Input should be 'flag', 'refuse' or 'quote'",
        ),
        (
            '[tenants.acme]\napi_key = "k"\ndocs = "docs"\nanswer_mode = "poem"\n',
            "tenants.acme.answer_mode: Input should be 'generate' or 'quote'",
        ),
    ],
)
def test_bad_configs_fail_at_start_with_the_reason(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, body))


def test_a_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [("RAGSERVE_API_CPUS", "some", "api_cpus: Value error, 'some' is not a CPU list"),
     ("RAGSERVE_PORT", "eighty", "port: Input should be a valid integer")],
)  # fmt: skip
def test_a_bad_service_setting_is_one_line_from_up_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(app, ["up", "--config", str(_write(tmp_path, GOOD))])
    assert result.exit_code == 1
    assert f"invalid settings: {message}" in result.stderr
    assert "Traceback" not in result.output
