"""What a real vLLM server says of itself on its Prometheus page: its queue, the tokens it has made."""

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ragserve.engine.replica_board import queue_depth
from tests.support.waiting import wait_until

__all__ = ["after_earlier_tests", "generated_tokens", "vllm_queue"]


def _metrics_page(vllm_url: str) -> str:
    return httpx.get(f"{vllm_url}/metrics", timeout=10).text


def vllm_queue(vllm_url: str) -> tuple[float, float]:
    """Its requests (running, waiting)."""
    return queue_depth(_metrics_page(vllm_url))


def generated_tokens(vllm_url: str) -> float:
    """Its count of the tokens it has generated, over its labels."""
    families = text_string_to_metric_families(_metrics_page(vllm_url))
    return sum(s.value for f in families for s in f.samples if s.name == "vllm:generation_tokens_total")


def after_earlier_tests(vllm_url: str, timeout_s: float = 300) -> None:
    """Waits until the shared vLLM has finished what earlier tests left it: nothing running or waiting."""
    wait_until(
        lambda: vllm_queue(vllm_url) == (0.0, 0.0), timeout_s, "vLLM to finish the requests of earlier tests"
    )
