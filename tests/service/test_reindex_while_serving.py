"""`ragserve reindex` while the service holds the embedded store: it goes through the admin API. A rebuild
for new chunking settings runs inside the serving process, and queries follow the switch."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from ragserve.engine.vllm_process import free_port
from ragserve.ingest.blue_green import Collections
from ragserve.ingest.embedding import DenseEmbedder
from ragserve.ingest.runtime import IngestRuntime
from ragserve.launch import registration
from ragserve.service.config import ModelConfig, ServeConfig, TenantConfig
from ragserve.settings import Settings
from tests.ingest.indexed import point_set
from tests.service.conftest import KEYS, Service, tenant_docs
from tests.support.documents import write
from tests.support.servers import serving


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


ROBOTS = "\n\n".join(
    f"Paragraph {i} says how the Roadrunner docks to charge its battery. " * 3 for i in range(8)
)


def _texts(settings: Settings, embedder: DenseEmbedder) -> tuple[str | None, set[str]]:
    with IngestRuntime.open(settings, embedder) as rt:
        return Collections(rt.index).live_name(), {p["text"] for p in point_set(rt.index, "acme").values()}


def test_a_chunking_change_is_rebuilt_beside_the_live_index_while_the_service_answers(
    tmp_path: Path, embedder: DenseEmbedder, base_model_dir: Path
) -> None:
    docs = tenant_docs(tmp_path / "docs")
    write(docs["acme"], "docking.md", f"# Docking\n\n{ROBOTS}")
    before = Settings(data_dir=tmp_path / "data")
    with IngestRuntime.open(before, embedder) as rt:
        for tenant, folder in docs.items():
            rt.reindexer().run(folder, tenant)
    old_name, old_texts = _texts(before, embedder)

    # The service restarted with smaller chunks: it serves the old index until its rebuild is complete.
    tenants = {name: TenantConfig(api_key=KEYS[name], docs=path) for name, path in docs.items()}
    config = ServeConfig(model=ModelConfig(max_model_len=2048, max_tokens=40), tenants=tenants)
    after = Settings(data_dir=before.data_dir, chunk_tokens=100, admin_key=SecretStr("admin-key"))
    vllm_url = f"http://127.0.0.1:{free_port()}"  # retrieval and re-indexing never call vLLM
    with serving(config, after, base_model_dir, vllm_url, embedder) as (url, _):

        def top_text() -> str:
            body = {"query": "How does the Roadrunner dock to charge?", "k": 1}
            response = httpx.post(
                f"{url}/v1/retrieve", json=body, headers={"Authorization": "Bearer acme-key"}
            )
            assert response.status_code == 200, response.text
            return str(response.json()["hits"][0]["text"])

        def reindex(tenant: str) -> dict[str, Any]:
            response = httpx.post(
                f"{url}/admin/reindex",
                json={"tenant": tenant},
                headers={"Authorization": "Bearer admin-key"},
                timeout=120,
            )
            assert response.status_code == 200, response.text
            return dict(response.json())

        assert top_text() in old_texts
        building = reindex("acme")
        assert (building["index"], building["waiting_for"]) == ("building", ["globex"])
        assert top_text() in old_texts
        assert reindex("globex")["index"] == "switched"
        switched_to = top_text()
    new_name, new_texts = _texts(after, embedder)
    assert new_name != old_name
    assert switched_to in new_texts
    assert switched_to not in old_texts
