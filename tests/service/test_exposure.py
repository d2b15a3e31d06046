"""What `ragserve up` refuses to serve with: the demo's public keys outside the demo, plain keys on a network
address, a blank or guessable admin key, a port in use; without an admin key the admin API is not there."""

import hashlib
import re
import socket
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from ragserve.cli.main import app
from ragserve.errors import ConfigError
from ragserve.files import read_toml
from ragserve.launch.exposure import DEMO_KEYS, check_safe_to_serve, is_loopback
from ragserve.service.app import create_app
from ragserve.service.config import ServeConfig, TenantConfig, load_config
from ragserve.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
STRONG_ADMIN_KEY = "kM3v9-2QxYp7LrT0wZ"  # 18 characters, random


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _config(tmp_path: Path, **key: str) -> ServeConfig:
    return ServeConfig(tenants={"acme": TenantConfig.model_validate({"docs": tmp_path, **key})})


def _settings(tmp_path: Path, admin_key: str | None = STRONG_ADMIN_KEY, demo: bool = False) -> Settings:
    secret = SecretStr(admin_key) if admin_key is not None else None
    return Settings(data_dir=tmp_path / "data", admin_key=secret, demo=demo)


def test_the_demo_keys_are_the_ones_the_examples_and_the_makefile_publish() -> None:
    """One list in the code; the example config and the Makefile may only use keys that are on it."""
    examples = read_toml(ROOT / "examples" / "ragserve.toml", ConfigError)
    published = {tenant["api_key"] for tenant in examples["tenants"].values()}
    [admin] = re.findall(r"^DEMO_ADMIN_KEY := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert published | {admin} == set(DEMO_KEYS)


@pytest.mark.parametrize("given", ["plain", "env", "sha256"])
def test_a_demo_key_is_refused_outside_the_demo_however_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    monkeypatch.setenv("ACME_API_KEY", "acme-demo-key")
    key = {"plain": {"api_key": "acme-demo-key"}, "env": {"api_key_env": "ACME_API_KEY"},
           "sha256": {"api_key_sha256": _sha("acme-demo-key")}}[given]  # fmt: skip
    with pytest.raises(ConfigError, match=r"^tenant acme: its API key is one of the demo's published keys"):
        check_safe_to_serve(_config(tmp_path, **key), _settings(tmp_path), "127.0.0.1")


def test_the_demo_serves_its_keys_and_admin_key_on_loopback(tmp_path: Path) -> None:
    demo = _settings(tmp_path, admin_key="demo-admin-key", demo=True)
    check_safe_to_serve(_config(tmp_path, api_key="acme-demo-key"), demo, "127.0.0.1")


@pytest.mark.parametrize("demo", [False, True])
def test_a_plain_key_is_refused_on_a_network_address_even_in_the_demo(tmp_path: Path, demo: bool) -> None:
    with pytest.raises(
        ConfigError, match=r"^tenant acme: a plain api_key .* not 0\.0\.0\.0; use api_key_env"
    ):
        check_safe_to_serve(
            _config(tmp_path, api_key="a-real-tenant-key"), _settings(tmp_path, demo=demo), "0.0.0.0"
        )


def test_hashed_and_environment_keys_serve_on_a_network_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACME_API_KEY", "a-real-tenant-key")
    for key in ({"api_key_sha256": _sha("another-real-key")}, {"api_key_env": "ACME_API_KEY"}):
        check_safe_to_serve(_config(tmp_path, **key), _settings(tmp_path), "0.0.0.0")


@pytest.mark.parametrize(
    ("admin_key", "demo", "message"),
    [("", False, "is set but blank"),
     ("   ", True, "is set but blank"),  # blank would open the admin API, so not even the demo takes it
     ("changeme", False, "is a placeholder"),
     ("demo-admin-key", False, "is a placeholder or the demo's key"),
     ("short-but-real", False, "has 14 characters; use a random key of 16 or more")],
)  # fmt: skip
def test_a_blank_or_guessable_admin_key_is_refused(
    tmp_path: Path, admin_key: str, demo: bool, message: str
) -> None:
    config = _config(tmp_path, api_key_sha256=_sha("a-real-tenant-key"))
    with pytest.raises(ConfigError, match=f"^RAGSERVE_ADMIN_KEY {message}"):
        check_safe_to_serve(config, _settings(tmp_path, admin_key=admin_key, demo=demo), "0.0.0.0")


def test_no_admin_key_or_a_strong_one_is_fine(tmp_path: Path) -> None:
    config = _config(tmp_path, api_key_sha256=_sha("a-real-tenant-key"))
    for admin_key in (None, STRONG_ADMIN_KEY):
        check_safe_to_serve(config, _settings(tmp_path, admin_key=admin_key), "0.0.0.0")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.5", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("10.0.0.7", False), ("api.example.com", False), ("", False)],
)  # fmt: skip
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_up_refuses_the_demo_config_outside_the_demo_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAGSERVE_DEMO", raising=False)
    result = CliRunner().invoke(app, ["up", "--config", str(ROOT / "examples" / "ragserve.toml")])
    assert result.exit_code == 1
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith("error: tenant acme: its API key is one of the demo's published keys")
    assert "Traceback" not in result.output


def test_up_refuses_the_demo_on_a_network_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGSERVE_DEMO", "1")
    config = str(ROOT / "examples" / "ragserve.toml")
    result = CliRunner().invoke(app, ["up", "--config", config, "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert "error: tenant acme: a plain api_key in the config is only served on a loopback" in result.stderr


def test_up_refuses_an_empty_admin_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGSERVE_ADMIN_KEY", "")
    result = CliRunner().invoke(app, ["up", "--config", str(_write_config(tmp_path))])
    assert result.exit_code == 1
    assert "error: RAGSERVE_ADMIN_KEY is set but blank" in result.stderr


@pytest.mark.parametrize("which", ["--port", "RAGSERVE_METRICS_PORT"])
def test_up_refuses_a_port_in_use_in_one_line_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, which: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        args = ["up", "--config", str(_write_config(tmp_path))]
        if which == "--port":
            args += ["--port", port]
        else:
            monkeypatch.setenv(which, port)
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith(f"error: 127.0.0.1:{port} cannot be used") and which in error
    assert "Traceback" not in result.output and "starting vLLM" not in result.output


def test_up_refuses_the_api_port_as_the_metrics_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGSERVE_METRICS_PORT", "8123")
    result = CliRunner().invoke(app, ["up", "--config", str(_write_config(tmp_path)), "--port", "8123"])
    assert result.exit_code == 1
    assert "error: RAGSERVE_METRICS_PORT is the API's port, 8123" in result.stderr


@pytest.mark.parametrize("admin_key", [None, "", "  "])
def test_without_an_admin_key_the_admin_api_is_not_there(tmp_path: Path, admin_key: str | None) -> None:
    """No key, or a blank one, never opens it: the routes do not exist (404), whatever the header says."""
    client = _routes_only(tmp_path, admin_key=admin_key)
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": f"Bearer {admin_key}"}):
        response = client.post("/admin/reindex", json={"tenant": "acme"}, headers=headers)
        assert response.status_code == 404, headers
        assert client.get("/admin/tenants", headers=headers).status_code == 404


@pytest.mark.parametrize("metrics_key", [None, "", "  "])
def test_without_a_metrics_key_the_api_port_has_no_metrics(tmp_path: Path, metrics_key: str | None) -> None:
    """The metrics name every tenant: without a real key they are only on their own listener."""
    client = _routes_only(tmp_path, metrics_key=metrics_key)
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": f"Bearer {metrics_key}"}):
        assert client.get("/metrics", headers=headers).status_code == 404, headers


def _routes_only(tmp_path: Path, **keys: str | None) -> TestClient:
    """The app with these key settings, its lifespan not run: enough to see which routes exist."""
    config = load_config(_write_config(tmp_path))
    secrets = {name: SecretStr(key) if key is not None else None for name, key in keys.items()}
    settings = Settings(data_dir=tmp_path / "data", **secrets)  # type: ignore[arg-type]
    return TestClient(create_app(config, settings, tmp_path / "model", "http://127.0.0.1:9"))


def _write_config(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir(exist_ok=True)
    path = tmp_path / "ragserve.toml"
    path.write_text(f'[tenants.acme]\napi_key_sha256 = "{_sha("a-real-tenant-key")}"\ndocs = "docs"\n')
    return path
