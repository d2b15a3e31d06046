"""How vLLM is started: behind a key that argv does not show, and with none of the API's secrets."""

from pathlib import Path

import pytest
from pydantic import SecretStr

from ragserve.engine.vllm_process import VllmSpec, start_key


def _spec(api_key: str | None = "vllm-key-for-this-start") -> VllmSpec:
    return VllmSpec(Path("model"), "base", 8100, 16, api_key=api_key)


def test_vllm_gets_none_of_the_apis_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "RAGSERVE_ADMIN_KEY": "admin-secret",
        "RAGSERVE_QDRANT_API_KEY": "qdrant-secret",
        "RAGSERVE_VLLM_API_KEY": "configured",
        "ACME_API_KEY": "tenant-secret",
        "AWS_SECRET": "x",
    }
    needed = {
        "PATH": "/usr/bin",
        "HOME": "/home/r",
        "HF_HOME": "/hf",
        "OMP_NUM_THREADS": "2",
        "VLLM_CPU_OMP_THREADS_BIND": "0-1",
        "LD_PRELOAD": "libtcmalloc.so",
        "PYTHONPATH": "/src",
    }
    for name, value in {**secrets, **needed}.items():
        monkeypatch.setenv(name, value)
    env = _spec().environment()
    assert not set(secrets) & set(env)
    assert not any(name.startswith("RAGSERVE_") for name in env)
    assert not {"admin-secret", "qdrant-secret", "tenant-secret"} & set(env.values())
    assert {name: env[name] for name in needed} == needed
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"


def test_the_key_goes_in_through_the_environment_not_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_API_KEY", "a-stale-key-from-the-shell")
    spec = _spec()
    assert spec.environment()["VLLM_API_KEY"] == "vllm-key-for-this-start"
    assert not any("vllm-key-for-this-start" in arg for arg in spec.command())
    assert "--api-key" not in spec.command()
    assert "vllm-key-for-this-start" not in repr(spec)
    # A vLLM started with no key (the tests' shared one) has none, not one inherited from the shell.
    assert "VLLM_API_KEY" not in _spec(api_key=None).environment()


def test_each_start_gets_a_fresh_random_key_unless_one_is_configured() -> None:
    first, second = start_key(None), start_key(None)
    assert first != second and len(first) >= 32
    assert start_key(SecretStr("configured-key")) == "configured-key"
    assert len(start_key(SecretStr(" "))) >= 32  # blank would leave vLLM open


def test_a_plain_server_gets_no_lora_flags() -> None:
    plain = VllmSpec(Path("merged"), "base", 8100, 16, enable_lora=False).command()
    assert not [arg for arg in plain if "lora" in arg]
    assert "--enable-lora" in _spec().command()
