"""Prometheus metrics: requests and errors by route and tenant, per-stage latency, tokens in and out."""

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["Metrics"]

_STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """One registry per app, so several apps (tests) never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ragserve_requests_total",
            "Requests by route, tenant and status",
            ["route", "tenant", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "ragserve_errors_total",
            "Error responses by route, tenant and type",
            ["route", "tenant", "type"],
            registry=self.registry,
        )
        self.stage_seconds = Histogram(
            "ragserve_stage_seconds",
            "Latency of each stage: retrieve, prompt, ttft, total",
            ["stage"],
            buckets=_STAGE_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "ragserve_tokens_total", "Tokens by tenant and direction", ["tenant", "direction"],
            registry=self.registry,
        )  # fmt: skip
