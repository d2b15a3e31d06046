"""A request's vLLM call, on a replica: leased for the call, and tried again where that is safe.

- With several replicas, a call that fails before its first token (the replica died, stopped answering, or
  is being replaced) is tried again on a fresh lease, which Ray Serve routes to a live replica, until
  RAGSERVE_REPLICA_FAILOVER_S has passed. A stream that has sent a token is never retried: its client gets an
  error event (streaming.sse_events).
- If vLLM answers that the tenant's adapter does not exist (it restarted and forgot it), the adapter is
  loaded again and the call retried; with replicas, each replica's health check also loads again what its
  vLLM forgot.
"""

import asyncio
import time
from collections.abc import AsyncGenerator
from contextlib import AbstractAsyncContextManager
from typing import Any

from ragserve.engine.vllm_client import VllmClient
from ragserve.errors import ModelNotAllowedError, UpstreamError
from ragserve.service.state import ServiceState

__all__ = ["complete_on_replica", "stream_on_replica"]

_FIRST_PAUSE_S = 0.2
_LONGEST_PAUSE_S = 2.0


class _Tries:
    """When a failed call may be tried again, and how long to wait first."""

    def __init__(self, state: ServiceState) -> None:
        self._state = state
        self._deadline = time.monotonic() + state.settings.replica_failover_s
        self._pause = _FIRST_PAUSE_S
        self._reloaded = False

    async def again_after(self, exc: Exception, model: str) -> bool:
        if isinstance(exc, ModelNotAllowedError) and not self._reloaded:
            self._reloaded = True
            return await self._state.adapters.reload(model)
        # Once reloaded, a replica may still lack it (Ray routed the reload elsewhere) until its next
        # health check loads it again: with replicas, that is tried again too.
        if not self._state.replicas.fails_over or time.monotonic() + self._pause > self._deadline:
            return False
        self._state.metrics.replica_retries.inc()
        await asyncio.sleep(self._pause)
        self._pause = min(self._pause * 2, _LONGEST_PAUSE_S)
        return True


def _lease(state: ServiceState, payload: dict[str, Any]) -> AbstractAsyncContextManager[VllmClient]:
    model = str(payload["model"])
    return state.replicas.lease(model, state.adapters.path_of(model))


async def complete_on_replica(state: ServiceState, payload: dict[str, Any]) -> dict[str, Any]:
    """The whole answer; nothing reached the client before it, so any failure may be tried again."""
    tries = _Tries(state)
    while True:
        try:
            async with _lease(state, payload) as vllm:
                return await vllm.chat(payload)
        except (ModelNotAllowedError, UpstreamError) as exc:
            if not await tries.again_after(exc, str(payload["model"])):
                raise


async def stream_on_replica(
    state: ServiceState, payload: dict[str, Any]
) -> AsyncGenerator[dict[str, Any], None]:
    """vLLM's chunks; tried again only while no chunk has been yielded."""
    tries = _Tries(state)
    while True:
        started = False
        try:
            async with _lease(state, payload) as vllm:
                async for chunk in vllm.stream_chat(payload):
                    started = True
                    yield chunk
                return
        except (ModelNotAllowedError, UpstreamError) as exc:
            if started or not await tries.again_after(exc, str(payload["model"])):
                raise
