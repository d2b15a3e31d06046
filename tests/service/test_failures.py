"""Back-pressure, cancellation and upstream failure, each against real servers."""

import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import httpx
import psutil
import pytest

from ragserve.engine.vllm_process import VllmProcess
from ragserve.ingest.embedding import DenseEmbedder
from ragserve.service.limits import ConcurrencyLimiter
from tests.service.conftest import KEYS, Service, serve
from tests.support.chat import post_chat, stream_chat, user
from tests.support.servers import free_port
from tests.support.vllm_metrics import after_earlier_tests, generated_tokens, vllm_queue
from tests.support.waiting import wait_until

# ignore_eos makes vLLM generate all 1500 tokens: over a minute on this CPU, so whatever a test does
# mid-stream (hang up, kill vLLM) comes first even on a stalled machine. With the short prompt of
# `rag: false` they fit the server's 2048.
LONGEST = 1500
LONG = {
    "messages": [{"role": "user", "content": "Write a very long story about robots."}],
    "max_tokens": LONGEST,
    "ignore_eos": True,
    "rag": False,
}


def _long_stream(
    url: str, tenant: str = "acme", timeout: float = 120
) -> AbstractContextManager[httpx.Response]:
    return stream_chat(url, KEYS[tenant], LONG, timeout)


@pytest.fixture
def limited(
    tmp_path: Path, embedder: DenseEmbedder, base_model_dir: Path, vllm: VllmProcess, adapters_root: Path
) -> Iterator[Service]:
    yield from serve(tmp_path, embedder, base_model_dir, vllm.url, adapters_root, max_concurrency=1)


def _until_generating(lines: Iterator[str]) -> list[str]:
    """Reads a stream until vLLM has produced its first token; the lines read, for assertion messages."""
    seen: list[str] = []
    for line in lines:
        seen.append(line)
        if line.startswith("data:") and '"content": "' in line and '"content": ""' not in line:
            return seen
        assert '"error"' not in line, seen
    raise AssertionError(f"the stream ended before generating: {seen}")


@contextmanager
def _holding(limiter: ConcurrencyLimiter, tenant: str) -> Iterator[None]:
    """Takes one of the tenant's slots from the test's thread, as a request in flight would, for as long as
    the test needs it. The service's thread must not change the counts meanwhile: call it when none is."""
    limiter.acquire(tenant)
    try:
        yield
    finally:
        limiter.release(tenant)


def test_over_the_concurrency_limit_is_429_with_retry_after(limited: Service) -> None:
    limiter = limited.state.limiter
    # A streamed answer holds its slot while it is generated...
    with _long_stream(limited.url, "globex") as first:
        lines = first.iter_lines()  # held: a dropped iterator closes the connection, which frees the slot
        seen = _until_generating(lines)
        assert limiter.in_flight("globex") == 1, seen
    wait_until(lambda: limiter.in_flight() == 0, 30, "the closed stream to free its slot")
    # ...and past the limit a request is refused at once. The slot is held by the test here, not by a stream
    # that a stalled machine could see end before the second request is read (CI saw that twice).
    with _holding(limiter, "globex"):
        second = post_chat(limited.url, KEYS["acme"], LONG, timeout=300)
    assert second.status_code == 429, second.text[:300]
    assert second.headers["Retry-After"] == "1"
    assert second.json()["error"]["type"] == "rate_limit_error"
    assert limiter.in_flight() == 0


@pytest.fixture
def shared(
    tmp_path: Path, embedder: DenseEmbedder, base_model_dir: Path, vllm: VllmProcess, adapters_root: Path
) -> Iterator[Service]:
    """4 requests in flight for the service; each of its two tenants may hold half of them."""
    yield from serve(tmp_path, embedder, base_model_dir, vllm.url, adapters_root, max_concurrency=4)


def _held_stream(url: str, release: threading.Event) -> httpx.Response:
    """acme's long streamed answer that, once admitted, keeps its connection (and so its slot) until
    `release` is set, reading nothing; a refusal is read whole. The response."""
    with _long_stream(url, timeout=300) as response:
        if response.status_code == 200:
            release.wait(300)
        else:
            response.read()
    return response


def _overload_once(service: Service, pool: ThreadPoolExecutor) -> None:
    """acme opens 12 long streams at once; its 2 admitted are held until the 10 refusals and globex's answer
    are in."""
    release = threading.Event()
    busy = [pool.submit(_held_stream, service.url, release) for _ in range(12)]
    try:
        wait_until(lambda: sum(f.done() for f in busy) >= 10, 120, "acme's requests past its share")
        refused = [f.result() for f in busy if f.done()]
        served = [f for f in busy if not f.done()]
        quiet = post_chat(service.url, KEYS["globex"], {"messages": user("Refunds?"), "max_tokens": 5})
    finally:
        release.set()
    assert quiet.status_code == 200, quiet.text
    assert [r.status_code for r in refused] == [429] * 10, [r.text for r in refused]
    assert all(r.headers["Retry-After"] == "1" for r in refused)
    assert "this key's limit" in refused[0].json()["error"]["message"]
    assert [f.result().status_code for f in served] == [200, 200]
    wait_until(lambda: service.state.limiter.in_flight() == 0, 60, "the closed streams to free their slots")


def test_overload_from_one_tenant_leaves_the_other_served(shared: Service) -> None:
    """acme opens 3x the service's limit of long streams at once, twice: it gets its share (held open until
    the refusals are counted, so a slow machine cannot let a late request in) and 429s, globex is still
    answered, and memory stays where it was."""
    rss = psutil.Process().memory_info().rss
    with ThreadPoolExecutor(12) as pool:
        for _ in range(2):
            _overload_once(shared, pool)
    assert psutil.Process().memory_info().rss - rss < 100 * 2**20


def test_a_client_that_disconnects_cancels_its_vllm_request(service: Service, vllm: VllmProcess) -> None:
    """vLLM stops generating for a client gone: far from all the tokens asked for are made. Counted by
    vLLM's own token counter, not by catching the request running, which a machine stalled between two
    reads can miss (CI did)."""
    after_earlier_tests(vllm.url)
    before = generated_tokens(vllm.url)
    with _long_stream(service.url) as response:
        _until_generating(response.iter_lines())
    wait_until(lambda: vllm_queue(vllm.url)[0] == 0, 30, "the cancelled request to leave vLLM")
    generated = generated_tokens(vllm.url) - before
    assert 0 < generated < LONGEST, f"vLLM made {generated} of the {LONGEST} tokens: not cancelled"


def test_vllm_unreachable_is_503_and_not_ready(
    tmp_path: Path, embedder: DenseEmbedder, base_model_dir: Path, adapters_root: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    for service in serve(tmp_path, embedder, base_model_dir, dead, adapters_root):
        response = post_chat(service.url, KEYS["acme"], LONG, timeout=30)
        assert response.status_code == 503
        assert response.json()["error"]["type"] == "service_unavailable"
        ready = httpx.get(f"{service.url}/readyz", timeout=30)
        assert ready.status_code == 503
        assert ready.json()["checks"]["vllm"] == "unavailable"


def test_vllm_dying_mid_stream_gives_an_error_event_then_readyz_503(
    tmp_path: Path, embedder: DenseEmbedder, base_model_dir: Path, own_vllm: VllmProcess, adapters_root: Path
) -> None:
    # Its own vLLM, so killing it leaves the session's server alone; globex uses the base model, which it has.
    doomed = own_vllm
    for service in serve(tmp_path, embedder, base_model_dir, doomed.url, adapters_root):
        events: list[str] = []
        with _long_stream(service.url, "globex") as response:
            for line in response.iter_lines():
                if line.startswith("data:"):
                    events.append(line[5:].strip())
                    if len(events) == 2:
                        assert doomed.pid is not None
                        threading.Thread(target=os.killpg, args=(doomed.pid, signal.SIGKILL)).start()
        assert events[-1] != "[DONE]"
        assert '"error"' in events[-1]
        assert '"type": "service_unavailable"' in events[-1]
        ready = httpx.get(f"{service.url}/readyz", timeout=30)
        assert ready.status_code == 503
