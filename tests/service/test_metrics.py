"""The request metrics' route label: the matched route's template, one fixed label for every other path."""

import uuid
from types import SimpleNamespace

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import Counter
from prometheus_client.samples import Sample

from ragserve.service.metrics import UNMATCHED, Metrics, RequestMetrics


def _app(metrics: Metrics) -> FastAPI:
    app = FastAPI()

    @app.get("/tenants/{tenant}/adapter")
    async def adapter(tenant: str) -> dict[str, str]:
        return {"tenant": tenant}

    app.add_middleware(RequestMetrics)
    app.state.ragserve = SimpleNamespace(metrics=metrics)  # the middleware reads only this
    return app


def _totals(counter: Counter) -> list[Sample]:
    """The counter's series (its `_created` timestamps left out)."""
    return [s for metric in counter.collect() for s in metric.samples if s.name.endswith("_total")]


def test_random_unknown_paths_share_one_series() -> None:
    metrics = Metrics()
    with TestClient(_app(metrics)) as client:
        for _ in range(100):
            assert client.get(f"/{uuid.uuid4().hex}/{uuid.uuid4().hex}").status_code == 404
    [requests] = _totals(metrics.requests)
    [errors] = _totals(metrics.errors)
    assert requests.labels["route"] == errors.labels["route"] == UNMATCHED
    assert requests.value == errors.value == 100


def test_a_templated_route_is_one_series_whatever_its_parameters() -> None:
    metrics = Metrics()
    with TestClient(_app(metrics)) as client:
        for tenant in ("acme", "globex", "initech"):
            assert client.get(f"/tenants/{tenant}/adapter").status_code == 200
    [series] = _totals(metrics.requests)
    assert series.labels["route"] == "/tenants/{tenant}/adapter" and series.value == 3
