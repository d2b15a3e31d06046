"""`ragserve reindex` while the service holds the embedded store: it goes through the admin API."""

import json
import os
import subprocess
import sys

import httpx

from ragserve.service import registration
from tests.conftest import write
from tests.service.conftest import KEYS, Service


def _reindex_cli(
    service: Service, tenant: str, admin_key: str | None, docs_of: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RAGSERVE_ADMIN_KEY"}
    if admin_key:
        env["RAGSERVE_ADMIN_KEY"] = admin_key
    docs = str(service.docs[docs_of or tenant])
    cmd = [sys.executable, "-m", "ragserve.cli.main", "reindex", docs, "--tenant", tenant, "--json",
           "--data-dir", str(service.data_dir)]  # fmt: skip
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_reindex_cli_goes_through_the_running_service(service: Service) -> None:
    registration.record(service.data_dir, service.url)
    write(service.docs["globex"], "decaf.md", "# Decaf\n\nThe Swiss Water decaf is roasted on Fridays.")
    result = _reindex_cli(service, "globex", "admin-key")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["added"] == 1
    hits = httpx.post(
        f"{service.url}/v1/retrieve",
        json={"query": "When is the decaf roasted?", "k": 1},
        headers={"Authorization": f"Bearer {KEYS['globex']}"},
    ).json()["hits"]
    assert hits[0]["source"] == "decaf.md"


def test_without_the_admin_key_the_cli_says_what_to_do(service: Service) -> None:
    registration.record(service.data_dir, service.url)
    result = _reindex_cli(service, "globex", None)
    assert result.returncode == 1
    assert "set RAGSERVE_ADMIN_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_cli_cannot_index_another_folder_into_a_tenant_through_the_service(service: Service) -> None:
    registration.record(service.data_dir, service.url)
    result = _reindex_cli(service, "globex", "admin-key", docs_of="acme")
    assert result.returncode == 1
    assert "refused it (400)" in result.stderr
    assert "re-indexes only globex's configured docs folder" in result.stderr
    assert "Traceback" not in result.stderr
