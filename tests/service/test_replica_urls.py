"""RAGSERVE_VLLM_URLS: vLLM servers that already run become Ray Serve replicas, one each."""

from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from ragserve.engine.vllm_process import VllmProcess
from ragserve.errors import ConfigError
from ragserve.ingest.embedding import DenseEmbedder
from ragserve.launch.stack import replicas_for
from ragserve.service.config import ModelConfig, ServeConfig, TenantConfig
from ragserve.settings import Settings
from tests.service.conftest import ADAPTER, ADAPTER_REF
from tests.support.chat import post_chat, user
from tests.support.documents import write
from tests.support.servers import serving


def _config(root: Path) -> ServeConfig:
    write(root / "docs", "faq.md", "# FAQ\n\nAcme ships within 2 days.")
    tenant = TenantConfig(api_key="acme-key", docs=root / "docs", adapter=ADAPTER_REF)
    return ServeConfig(model=ModelConfig(max_model_len=2048, max_tokens=8), tenants={"acme": tenant})


def test_one_server_or_replicas_not_both(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, vllm_url="http://a:8000", vllm_urls=["http://b:8000"])
    replicas = replicas_for(_config(tmp_path), settings, tmp_path, print)
    with pytest.raises(ConfigError, match="not both"), replicas:
        pass


def test_running_servers_serve_as_replicas(
    tmp_path: Path, embedder: DenseEmbedder, base_model_dir: Path, vllm: VllmProcess, adapters_root: Path
) -> None:
    config = _config(tmp_path)
    settings = Settings(
        data_dir=tmp_path / "data",
        adapters_dir=adapters_root,
        admin_key=SecretStr("admin-key"),
        vllm_urls=[vllm.url],
    )
    with (
        replicas_for(config, settings, base_model_dir, print) as replicas,
        serving(config, settings, base_model_dir, "", embedder, replicas=replicas) as (url, app),
    ):
        body = {"messages": user("Hi"), "max_tokens": 4, "rag": False}
        answer = post_chat(url, "acme-key", body)
        # The server restarts behind the replica and forgets the adapter: the next request still works.
        httpx.post(f"{vllm.url}/v1/unload_lora_adapter", json={"lora_name": ADAPTER}, timeout=30)
        after_restart = post_chat(url, "acme-key", body)
        listed = httpx.get(
            f"{url}/admin/replicas", headers={"Authorization": "Bearer admin-key"}, timeout=30
        ).json()
        metrics = httpx.get(app.state.ragserve.metrics_url, timeout=30).text
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == ADAPTER
    assert after_restart.status_code == 200, after_restart.text
    assert [r["url"] for r in listed] == [vllm.url]
    assert listed[0]["healthy"] and ADAPTER in listed[0]["adapters"]
    assert listed[0]["requests"] >= 1  # posted by the replica as each lease starts
    assert f'ragserve_replica_healthy{{replica="0",url="{vllm.url}"}} 1.0' in metrics
