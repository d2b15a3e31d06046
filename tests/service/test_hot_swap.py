"""Per-tenant adapter swaps in the running service, against the real vLLM server: no request fails."""

import asyncio
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ragserve.adapters.assignments import AssignmentStore
from ragserve.engine.vllm_client import VllmClient
from ragserve.engine.vllm_process import VllmProcess
from ragserve.ingest.embedding import DenseEmbedder
from ragserve.service.config import BUNDLED_BASE
from ragserve.settings import Settings
from ragserve.state.database import Database
from tests.service.conftest import ADAPTER, KEYS, Service, serve
from tests.support.chat import post_chat, sse_data, stream_chat, user
from tests.support.vllm_metrics import after_earlier_tests, vllm_queue
from tests.support.waiting import wait_until

ADMIN = {"Authorization": "Bearer admin-key"}
V2 = "acme-style--v2"


@pytest.fixture
def fresh(
    tmp_path: Path, embedder: DenseEmbedder, base_model_dir: Path, vllm: VllmProcess, adapters_root: Path
) -> Iterator[Service]:
    """A service of its own: nothing persisted, so acme starts on its configured acme-style@v1."""
    yield from serve(tmp_path, embedder, base_model_dir, vllm.url, adapters_root)


def _assign(service: Service, tenant: str, adapter: str) -> httpx.Response:
    return httpx.put(
        f"{service.url}/admin/tenants/{tenant}/adapter", json={"adapter": adapter}, headers=ADMIN, timeout=120
    )


def _chat(service: Service, tenant: str, max_tokens: int = 4) -> tuple[int, str]:
    body = {"messages": user("Hi"), "max_tokens": max_tokens, "rag": False}
    response = post_chat(service.url, KEYS[tenant], body)
    return response.status_code, response.json().get("model", response.text)


def _models(service: Service, tenant: str) -> set[str]:
    response = httpx.get(f"{service.url}/v1/models", headers={"Authorization": f"Bearer {KEYS[tenant]}"})
    return {m["id"] for m in response.json()["data"]}


def _loaded_in_vllm(vllm: VllmProcess) -> set[str]:
    return {m["id"] for m in httpx.get(f"{vllm.url}/v1/models", timeout=10).json()["data"]}


class _LongStream(threading.Thread):
    """One streamed acme request that spans the swap: begun just before it, with far more tokens than the
    swap takes, and once `swapped` is set it reads `AFTER_SWAP` more chunks and hangs up. Records the model of
    every chunk, how many it read after the swap, and when (monotonic) its first token came and it ended."""

    AFTER_SWAP = 10
    MAX_TOKENS = 1900  # of the shared vLLM's 2048 (its --max-model-len), past the prompt

    def __init__(self, service: Service) -> None:
        super().__init__(daemon=True)
        self.service = service
        self.models: set[str] = set()
        self.generating = threading.Event()
        self.swapped = threading.Event()
        self.after_swap = 0
        self.ended_on_its_own = False
        self.first_token_at = self.ended_at = 0.0

    def run(self) -> None:
        story = user("Tell a long story.")
        body = {"messages": story, "max_tokens": self.MAX_TOKENS, "ignore_eos": True, "rag": False}
        try:
            with stream_chat(self.service.url, KEYS["acme"], body, timeout=300) as response:
                for data in sse_data(response.iter_lines()):
                    if data == "[DONE]":
                        self.ended_on_its_own = True
                    elif model := json.loads(data).get("model"):
                        self.models.add(model)
                        self.first_token_at = self.first_token_at or time.monotonic()
                        self.generating.set()
                    self.after_swap += self.swapped.is_set()
                    if self.after_swap >= self.AFTER_SWAP:
                        return  # the client hangs up: the service cancels the request and ends its lease
        finally:
            self.ended_at = time.monotonic()


def _load(
    service: Service, tenant: str, stop: threading.Event, log: list[tuple[float, float, int, str]]
) -> None:
    while not stop.is_set():
        started = time.monotonic()
        try:
            status, model = _chat(service, tenant)
        except (httpx.HTTPError, ValueError) as exc:  # recorded as a failure, not a silently dead thread
            status, model = 0, repr(exc)
        log.append((started, time.monotonic(), status, model))


def test_a_swap_under_load_fails_no_request_and_unloads_the_old_version_after_its_last_request(
    fresh: Service, vllm: VllmProcess
) -> None:
    after_earlier_tests(vllm.url)  # what they left generating would keep the stream company
    stop = threading.Event()
    logs: dict[str, list[tuple[float, float, int, str]]] = {"acme": [], "globex": []}
    workers = [threading.Thread(target=_load, args=(fresh, t, stop, logs[t])) for t in logs for _ in range(2)]
    long = _LongStream(fresh)
    for worker in workers:
        worker.start()
    try:
        wait_until(lambda: all(logs.values()), 120)  # requests of both tenants done before the swap
        long.start()  # now, so that nothing but the swap stands between its first token and the swap
        assert long.generating.wait(120)
        swap_started = time.monotonic()
        response = _assign(fresh, "acme", "acme-style@v2")
        swapped = time.monotonic()
        assert response.status_code == 200, response.text
        assert response.json() == {"tenant": "acme", "adapter": "acme-style@v2", "served_name": V2}
        loaded_after_swap = _loaded_in_vllm(vllm)
        long.swapped.set()
        wait_until(
            lambda: sum(started > swapped for started, *_ in logs["acme"]) >= 2,
            300,
            lambda: (
                f"two acme requests begun after the swap; acme's last: {logs['acme'][-3:]}, "
                f"globex's last: {logs['globex'][-1:]}, vLLM's (running, waiting): {vllm_queue(vllm.url)}, "
                f"the service's assignments: {fresh.state.adapters.assignments()}, "
                f"the long stream's models: {long.models}, vLLM's log:\n{vllm.log_tail(15)}"
            ),
        )
    finally:
        stop.set()
        long.swapped.set()
        for worker in [*workers, long]:
            if worker.is_alive():  # the stream is not begun if the workers' first requests did not end
                worker.join(300)

    every = logs["acme"] + logs["globex"]
    assert len(every) > 4 and all(status == 200 for _, _, status, _ in every), every
    assert {model for *_, model in logs["globex"]} == {BUNDLED_BASE}
    # Done before the swap began: on v1. (One sent just before it may reach the handler after the switch,
    # and rightly get v2: the client's send time says nothing about when the server took its served name.)
    assert {model for _, finished, _, model in logs["acme"] if finished < swap_started} <= {ADAPTER}
    after = [model for started, *_, model in logs["acme"] if started > swapped]
    assert after and set(after) == {V2}
    # The stream that began before the swap went on after it, on the version it began with, which vLLM
    # still held: it was in flight until it hung up, AFTER_SWAP chunks past the swap.
    first, ended = long.first_token_at, long.ended_at
    assert not long.ended_on_its_own and long.after_swap == long.AFTER_SWAP, (
        f"it ended before the swap: from its first token, the swap began after {swap_started - first:.1f} s "
        f"and returned after {swapped - first:.1f} s, and the stream ended after {ended - first:.1f} s, "
        f"{long.after_swap} chunks past the swap"
    )
    assert long.models == {ADAPTER}
    assert ADAPTER in loaded_after_swap, "the old version was unloaded while a request still used it"
    deadline = time.monotonic() + 15
    while ADAPTER in _loaded_in_vllm(vllm) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ADAPTER not in _loaded_in_vllm(vllm)
    assert _models(fresh, "acme") == {"default", BUNDLED_BASE, V2}


def test_a_refused_adapter_changes_nothing(fresh: Service, adapters_root: Path) -> None:
    broken = adapters_root / "broken" / "v1"
    if not broken.exists():
        shutil.copytree(adapters_root / "acme-style" / "v1", broken)
        config = json.loads((broken / "adapter_config.json").read_text())
        (broken / "adapter_config.json").write_text(json.dumps({**config, "peft_type": "IA3"}))
    cases = [
        ("acme", "broken@v1", 400, "PEFT type is 'IA3'"),
        ("acme", "missing", 404, "no adapter named 'missing'"),
        ("acme", "acme-style@v9", 404, "has no version 'v9'"),
        ("acme", "../../etc", 400, "a '..' part is not allowed"),
        ("acme", "etc/passwd", 400, "is unsafe"),
        ("nobody", "acme-style@v2", 404, "unknown tenant"),
    ]
    for tenant, adapter, status, message in cases:
        response = _assign(fresh, tenant, adapter)
        assert response.status_code == status, response.text
        assert message in response.json()["error"]["message"]
    no_key = httpx.put(f"{fresh.url}/admin/tenants/acme/adapter", json={"adapter": ""})
    assert no_key.status_code == 401
    assert _chat(fresh, "acme") == (200, ADAPTER)
    assert _chat(fresh, "globex") == (200, BUNDLED_BASE)


def test_an_assignment_another_process_wrote_is_served_from_the_tenants_next_request(fresh: Service) -> None:
    """Another API process sharing the database assigns acme v2: this one loads it for acme's next request."""
    assert _chat(fresh, "acme") == (200, ADAPTER)
    AssignmentStore(fresh.state.database).set("acme", "acme-style@v2")  # what that process persists
    assert _chat(fresh, "acme") == (200, V2)
    assert _chat(fresh, "globex") == (200, BUNDLED_BASE)
    listing = httpx.get(f"{fresh.url}/admin/tenants/acme", headers=ADMIN).json()
    assert listing["adapter"] == "acme-style@v2"


def test_back_to_the_base_model_and_assignments_survive_a_restart(
    tmp_path: Path, embedder: DenseEmbedder, base_model_dir: Path, vllm: VllmProcess, adapters_root: Path
) -> None:
    for service in serve(tmp_path, embedder, base_model_dir, vllm.url, adapters_root):
        assert _assign(service, "acme", "acme-style@v2").status_code == 200
        assert (
            _assign(service, "globex", "acme-style@v1").status_code == 200
        )  # any tenant may use any adapter
        assert _assign(service, "acme", "").json()["served_name"] == BUNDLED_BASE
        assert _chat(service, "acme") == (200, BUNDLED_BASE)
    persisted = AssignmentStore(Database.of(Settings(data_dir=tmp_path / "data"))).read()
    assert persisted == {"acme": "", "globex": "acme-style@v1"}
    for service in serve(tmp_path, embedder, base_model_dir, vllm.url, adapters_root):
        assert _models(service, "acme") == {"default", BUNDLED_BASE}  # not its configured v1
        assert _chat(service, "globex") == (200, ADAPTER)
        listing = httpx.get(f"{service.url}/admin/tenants", headers=ADMIN).json()["tenants"]
        assert {t["name"]: t["adapter"] for t in listing} == {"acme": "", "globex": "acme-style@v1"}


@pytest.mark.parametrize("stream", [False, True])
def test_when_vllm_forgets_an_adapter_the_service_loads_it_again(
    fresh: Service, vllm: VllmProcess, stream: bool
) -> None:
    # As after a vLLM restart: the adapter is gone from the server, the service still maps acme to it.
    httpx.post(
        f"{vllm.url}/v1/unload_lora_adapter", json={"lora_name": ADAPTER}, timeout=30
    ).raise_for_status()
    assert ADAPTER not in _loaded_in_vllm(vllm)
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 4,
        "stream": stream,
    }
    response = httpx.post(
        f"{fresh.url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {KEYS['acme']}"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert f'"model": "{ADAPTER}"' in response.text.replace('"model":"', '"model": "')
    assert '"error"' not in response.text
    assert ADAPTER in _loaded_in_vllm(vllm)


def test_two_loaders_racing_for_one_adapter_both_succeed(vllm: VllmProcess, adapters_root: Path) -> None:
    # A replica's health check and a request's reload both find the adapter gone and load it at once.
    httpx.post(f"{vllm.url}/v1/unload_lora_adapter", json={"lora_name": ADAPTER}, timeout=30)
    path = adapters_root / "acme-style" / "v1"

    async def race() -> None:
        clients = [VllmClient(vllm.url, 120, api_key=vllm.api_key) for _ in range(4)]
        try:
            await asyncio.gather(*(client.load_lora(ADAPTER, path) for client in clients))
        finally:
            for client in clients:
                await client.aclose()

    asyncio.run(race())
    assert ADAPTER in _loaded_in_vllm(vllm)
