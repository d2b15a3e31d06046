"""vLLM dies under `ragserve up`'s service: the stream in flight ends with an error event, /readyz goes 503 at
once, and the service starts vLLM again and loads the tenant's adapter back, all without a restart of the API.
"""

import logging
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from ragserve.engine.vllm_process import VllmProcess
from ragserve.ingest.embedding import DenseEmbedder
from tests.service.conftest import ADAPTER, KEYS, serve
from tests.support.chat import post_chat, sse_data, stream_chat
from tests.support.waiting import wait_until

# ignore_eos makes vLLM generate all 1500 tokens (over a minute here; `rag: false` keeps the prompt short
# enough for them): far longer than the kill takes to come, even on a stalled machine.
LONG = {
    "messages": [{"role": "user", "content": "Write a very long story about robots."}],
    "max_tokens": 1500,
    "ignore_eos": True,
    "rag": False,
    "stream": True,
}
RESTART_S = 300  # vLLM takes 60-80 s to start on 2 cores; more while other tests share them


def _status_within(url: str, status: int, seconds: float) -> float:
    """Polls url until it answers status; the seconds that took. Fails after `seconds`."""
    return wait_until(
        lambda: httpx.get(url, timeout=10).status_code == status, seconds, f"{url} to answer {status}", 0.2
    )


@pytest.mark.slow
def test_a_killed_vllm_is_restarted_with_the_adapters_and_the_api_keeps_serving(
    tmp_path: Path,
    embedder: DenseEmbedder,
    base_model_dir: Path,
    own_vllm: VllmProcess,
    adapters_root: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="ragserve")
    process = own_vllm
    for service in serve(tmp_path, embedder, base_model_dir, process.url, adapters_root, process):
        first_pid = process.pid
        assert first_pid is not None
        events: list[str] = []
        with stream_chat(service.url, KEYS["acme"], LONG) as response:
            for data in sse_data(response.iter_lines()):
                events.append(data)
                if len(events) == 2:  # generating on the tenant's adapter: kill the whole group
                    os.killpg(first_pid, signal.SIGKILL)
                    killed = time.monotonic()
        assert '"type": "service_unavailable"' in events[-1], events[-3:]

        readyz = f"{service.url}/readyz"
        assert _status_within(readyz, 503, 2) + (time.monotonic() - killed) < 5
        back_after = _status_within(readyz, 200, RESTART_S)

        assert process.pid != first_pid
        served = httpx.get(f"{process.url}/v1/models", timeout=10).json()["data"]
        assert ADAPTER in {m["id"] for m in served}  # loaded again by the restart, not by a request
        body = {"model": ADAPTER, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8}
        answer = post_chat(service.url, KEYS["acme"], body, timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == ADAPTER
        metrics = httpx.get(service.metrics_url, timeout=10).text
        assert "ragserve_vllm_restarts_total 1.0" in metrics
    assert "vLLM exited with code -9" in caplog.text and str(process.log_path) in caplog.text
    assert "vLLM restarted" in caplog.text and "loaded 1 of 1 adapters again" in caplog.text
    print(f"/readyz was 200 again {back_after:.0f}s after the kill's 503")
