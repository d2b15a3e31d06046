"""Prometheus metrics: requests and errors by route and tenant, per-stage latency, tokens in and out, and
restarts of vLLM, and each vLLM replica's load and adapters.

Their labels name every tenant, so they are served on a listener of their own (`MetricsListener`, loopback by
default), never on the port the tenants' keys reach, unless RAGSERVE_METRICS_KEY asks for it there too.
"""

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragserve.engine.replica_board import ReplicaStats
from ragserve.errors import ConfigError

__all__ = ["UNMATCHED", "Metrics", "MetricsListener", "ReplicaFigures", "RequestMetrics", "route_label"]

log = logging.getLogger("ragserve.service")

_STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_SUPPORT_BUCKETS = (0.0, 0.25, 0.5, 0.75, 0.99, 1.0)
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
        self.answer_support = Histogram(
            "ragserve_answer_support", "Each answer's grounding support: the share of its claims supported",
            ["tenant"], buckets=_SUPPORT_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.vllm_restarts = Counter(
            "ragserve_vllm_restarts", "Times `ragserve up` started its vLLM again after it died",
            registry=self.registry,
        )  # fmt: skip
        self.replica_retries = Counter(
            "ragserve_replica_retries", "vLLM calls tried again on a fresh replica lease after a failure",
            registry=self.registry,
        )  # fmt: skip
        self.replicas = ReplicaFigures()
        self.registry.register(self.replicas)

    def count_tokens(self, tenant: str, usage: dict[str, Any] | None) -> None:
        """An answer's usage (vLLM's), by tenant and direction."""
        if usage:
            self.tokens.labels(tenant, "prompt").inc(int(usage.get("prompt_tokens") or 0))
            self.tokens.labels(tenant, "completion").inc(int(usage.get("completion_tokens") or 0))


_REPLICA_FIGURES = {
    "healthy": "1 while the replica's vLLM answers its health check",
    "running": "Requests its vLLM is running",
    "waiting": "Requests waiting in its vLLM's queue",
    "adapters": "Adapters loaded into its vLLM",
    "requests": "Requests leased to it since it started",
    "adapter_hits": "Requests whose adapter it already held",
    "adapter_loads": "Adapters it loaded",
}


class ReplicaFigures(Collector):
    """Each vLLM replica's figures as its last report had them (GET /admin/replicas), read at each scrape, so
    a replaced replica's old URL goes away. `read` is set once the service runs; it is called off the event
    loop (a scrape runs in the listener's thread, or in a worker thread)."""

    def __init__(self) -> None:
        self.read: Callable[[], Sequence[ReplicaStats]] = list

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return self._families(())  # the names alone: registering must not read the replicas

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            stats = self.read()
        except Exception as exc:  # a scrape still answers the other metrics
            log.warning("replica figures unavailable for this scrape: %s", exc)
            stats = ()
        return self._families(stats)

    @staticmethod
    def _families(stats: Sequence[ReplicaStats]) -> Iterator[GaugeMetricFamily]:
        for name, help_ in _REPLICA_FIGURES.items():
            family = GaugeMetricFamily(f"ragserve_replica_{name}", help_, labels=["replica", "url"])
            for replica in stats:
                value = len(replica.adapters) if name == "adapters" else getattr(replica, name)
                family.add_metric([str(replica.rank), replica.url], float(value))
            yield family


class MetricsListener:
    """prometheus_client's own exposition server, in a daemon thread, on its own address and port."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        try:
            self._server, self._thread = start_http_server(port, host, registry)
        except OSError as exc:
            raise ConfigError(
                f"the metrics listener cannot bind {host}:{port} ({exc.strerror or exc}): set "
                "RAGSERVE_METRICS_PORT (0 for any free port) or RAGSERVE_METRICS_HOST"
            ) from exc
        bound = self._server.server_address[1]
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{bound}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


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
