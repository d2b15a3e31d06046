"""Each vLLM replica's figures, and the small Ray actor they are posted to for GET /admin/replicas."""

import re
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ReplicaStats", "board", "board_actor", "queue_depth"]

_GAUGE = re.compile(r"^(vllm:num_requests_(?:running|waiting))\{[^}]*\}\s+([0-9.eE+-]+)$", re.MULTILINE)


@dataclass
class ReplicaStats:
    """One replica's figures, as GET /admin/replicas shows them."""

    rank: int
    url: str
    healthy: bool = True
    running: float = 0.0
    waiting: float = 0.0
    adapters: list[str] = field(default_factory=list)
    requests: int = 0
    adapter_hits: int = 0
    adapter_loads: int = 0
    at: float = field(default_factory=time.time)


BOARD = "ragserve-replica-board"
NAMESPACE = "ragserve"


def board_actor() -> Any:
    """A small Ray actor that holds each replica's latest figures, by rank, for GET /admin/replicas."""
    import ray

    class ReplicaBoard:
        def __init__(self) -> None:
            self.stats: dict[int, ReplicaStats] = {}

        def put(self, rank: int, stats: ReplicaStats) -> None:
            self.stats[rank] = stats

        def get(self) -> list[ReplicaStats]:
            return [self.stats[rank] for rank in sorted(self.stats)]

    actor: Any = ray.remote(num_cpus=0)(ReplicaBoard)
    return actor.options(name=BOARD, namespace=NAMESPACE, get_if_exists=True).remote()


def board() -> Any:
    """The board, from inside a replica."""
    import ray

    return ray.get_actor(BOARD, namespace=NAMESPACE)


def queue_depth(metrics_text: str) -> tuple[float, float]:
    """vLLM's running and waiting requests, from its Prometheus page."""
    gauges = dict(_GAUGE.findall(metrics_text))
    running, waiting = (float(gauges.get(f"vllm:num_requests_{what}", 0)) for what in ("running", "waiting"))
    return running, waiting
