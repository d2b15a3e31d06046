"""Prometheus metrics: requests and errors by route and tenant, per-stage latency, tokens in and out, and
restarts of vLLM, and each vLLM replica's load and adapters."""

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragserve.engine.replica_board import ReplicaStats

__all__ = ["UNMATCHED", "Metrics", "RequestMetrics", "route_label"]

_STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
UNMATCHED = "<unmatched>"  # the one route label of every path no route matches: a scan adds no series


def route_label(scope: Scope) -> str:
    """The matched route's template (`/admin/tenants/{tenant}/adapter`), never the raw path."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED


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
        self.vllm_restarts = Counter(
            "ragserve_vllm_restarts", "Times `ragserve up` started its vLLM again after it died",
            registry=self.registry,
        )  # fmt: skip
        self.replica_retries = Counter(
            "ragserve_replica_retries", "vLLM calls tried again on a fresh replica lease after a failure",
            registry=self.registry,
        )  # fmt: skip
        # Each replica's figures as its last report had them (GET /admin/replicas): set at each scrape.
        self.replica = {
            name: Gauge(f"ragserve_replica_{name}", help_, ["replica", "url"], registry=self.registry)
            for name, help_ in _REPLICA_FIGURES.items()
        }

    def note_replicas(self, replicas: Sequence[ReplicaStats]) -> None:
        for gauge in self.replica.values():
            gauge.clear()  # a replaced replica's old URL goes away
        for stats in replicas:
            for name, gauge in self.replica.items():
                value = len(stats.adapters) if name == "adapters" else getattr(stats, name)
                gauge.labels(str(stats.rank), stats.url).set(float(value))


_REPLICA_FIGURES = {
    "healthy": "1 while the replica's vLLM answers its health check",
    "running": "Requests its vLLM is running",
    "waiting": "Requests waiting in its vLLM's queue",
    "adapters": "Adapters loaded into its vLLM",
    "requests": "Requests leased to it since it started",
    "adapter_hits": "Requests whose adapter it already held",
    "adapter_loads": "Adapters it loaded",
}


class RequestMetrics:
    """Pure ASGI middleware counting requests and errors by route template, tenant and status.

    Unlike Starlette's BaseHTTPMiddleware it does not re-pipe streamed bodies, so it costs nothing per token.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            state = getattr(scope.get("app"), "state", None)
            metrics: Metrics | None = getattr(getattr(state, "ragserve", None), "metrics", None)
            if metrics is not None:
                tenant = str(scope.get("state", {}).get("tenant", "-"))
                route = route_label(scope)
                metrics.requests.labels(route, tenant, str(status)).inc()
                if status >= 400:
                    metrics.errors.labels(route, tenant, str(status)).inc()
