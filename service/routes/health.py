"""Liveness, readiness (a real check of vLLM and Qdrant, with a timeout), and Prometheus metrics on this port
for a scraper with the metrics key."""

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ragserve.errors import AuthError
from ragserve.service.auth import bearer_matches
from ragserve.service.deps import StateDep

__all__ = ["metrics_router", "router"]

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the API process answers."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: StateDep) -> JSONResponse:
    """Readiness: a real call to vLLM and to Qdrant, each with a timeout; 503 when either fails, and at once
    while vLLM is known lost."""
    timeout = state.settings.readiness_timeout_s
    # Known lost (a call's connection failed), it is 503 at once, until the supervisor sees it back; with
    # replicas, ready while any one is.
    vllm_ok = await state.replicas.healthy(timeout)
    try:
        await asyncio.wait_for(asyncio.to_thread(state.ingest.index.ping), timeout)
        qdrant_ok = True
    except Exception:  # any failure or time-out of the store means not ready
        qdrant_ok = False
    checks: dict[str, Any] = {
        "vllm": "ok" if vllm_ok else "unavailable",
        "qdrant": "ok" if qdrant_ok else "unavailable",
    }
    ready = vllm_ok and qdrant_ok
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
    )


metrics_router = APIRouter(tags=["health"], include_in_schema=False)


@metrics_router.get("/metrics")
async def metrics(state: StateDep, authorization: Annotated[str | None, Header()] = None) -> Response:
    """Mounted only when RAGSERVE_METRICS_KEY is set, and answered only to a scrape with that bearer key: the
    metrics name every tenant (the listener on RAGSERVE_METRICS_PORT serves them off the tenants' port)."""
    key = state.settings.metrics_key
    if key is None or not bearer_matches(authorization, key):
        raise AuthError("missing or wrong metrics key: send 'Authorization: Bearer <RAGSERVE_METRICS_KEY>'")
    # In a thread: the replica figures are read from this event loop while the scrape waits.
    text = await asyncio.to_thread(generate_latest, state.metrics.registry)
    return Response(text, media_type=CONTENT_TYPE_LATEST)
