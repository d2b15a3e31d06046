"""The vLLM replicas the service sends requests to: one server, or several behind Ray Serve (replica.py).

A request takes a *lease* on one replica for as long as it runs: `lease(model, adapter_path)` yields the
VllmClient of the replica chosen for it. With one server that is always the same client. With Ray Serve the
choice is Ray's multiplexed routing by the adapter's served name, and the lease is an open call on that
replica, so Ray counts it as the replica's load until the request is over.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from ragserve.engine.replica import ReplicaPlan, deployment
from ragserve.engine.replica_board import ReplicaStats, board_actor, queue_depth
from ragserve.engine.vllm_client import VllmClient
from ragserve.errors import UpstreamError

__all__ = ["OneVllm", "RayReplicas", "Replicas"]

log = logging.getLogger("ragserve.replicas")

APP = "ragserve-vllm"


class Replicas(Protocol):
    """What the service needs of its vLLM replicas, however many there are."""

    fails_over: bool  # whether a failed call may be tried again on another replica

    def lease(self, model: str, adapter_path: Path | None) -> AbstractAsyncContextManager[VllmClient]:
        """The client of the replica that serves this request, held for the request."""
        ...

    async def load_lora(self, name: str, path: Path) -> None: ...

    async def unload_lora(self, name: str) -> None: ...

    async def healthy(self, timeout_s: float) -> bool: ...

    async def describe(self) -> list[ReplicaStats]: ...

    async def aclose(self) -> None: ...


class OneVllm:
    """One vLLM server: every request goes to it, and its adapters are loaded and unloaded by the swap."""

    fails_over = False  # no other server to try; the supervisor restarts this one

    def __init__(self, client: VllmClient, base_name: str) -> None:
        self.client = client
        self._base_name = base_name
        self._stats = ReplicaStats(0, client.base_url)

    @asynccontextmanager
    async def lease(self, model: str, adapter_path: Path | None) -> AsyncIterator[VllmClient]:
        self._stats.requests += 1
        if adapter_path is not None:
            self._stats.adapter_hits += 1  # the swap loads an adapter before any request can name it
        yield self.client

    async def load_lora(self, name: str, path: Path) -> None:
        await self.client.load_lora(name, path)
        self._stats.adapter_loads += 1

    async def unload_lora(self, name: str) -> None:
        await self.client.unload_lora(name)

    async def healthy(self, timeout_s: float) -> bool:
        return self.client.reachable and await self.client.healthy(timeout_s)

    async def describe(self) -> list[ReplicaStats]:
        stats = self._stats
        stats.healthy = await self.healthy(2.0)
        try:
            stats.running, stats.waiting = queue_depth(await self.client.metrics_text())
            stats.adapters = sorted(await self.client.served_models() - {self._base_name})
        except UpstreamError:
            pass
        stats.at = time.time()
        return [stats]

    async def aclose(self) -> None:
        await self.client.aclose()


class RayReplicas:
    """vLLM replicas deployed on Ray Serve: a local Ray here, a Ray cluster by RAGSERVE_RAY_ADDRESS."""

    fails_over = True

    def __init__(self, handle: Any, board: Any, timeout_s: float, stale_after_s: float) -> None:
        self._handle = handle.options(stream=True)
        self._board = board
        self._timeout_s = timeout_s
        self._stale_after_s = stale_after_s
        self._clients: dict[tuple[str, str | None], VllmClient] = {}

    @classmethod
    def start(
        cls,
        plan: ReplicaPlan,
        replicas: int,
        max_ongoing: int,
        health_period_s: float,
        gpus: float,
        ray_address: str | None,
    ) -> "RayReplicas":
        """Joins the Ray cluster at `ray_address` (or starts a local one) and deploys the replicas; returns
        once every replica's vLLM answers."""
        import ray
        from ray import serve

        try:
            if not ray.is_initialized():
                ray.init(
                    address=ray_address, include_dashboard=False, log_to_driver=False, namespace="ragserve"
                )
            serve.start(proxy_location="Disabled")
            board = board_actor()
            app = deployment(plan, replicas, max_ongoing, health_period_s, gpus)
            handle = serve.run(app, name=APP, route_prefix=None)
        except Exception as exc:  # Ray's own errors: no cluster at that address, a replica that cannot start
            if ray.is_initialized():
                ray.shutdown()
            where = f"; the replicas' vLLM logs are in {plan.log_dir}" if plan.log_dir else ""
            raise UpstreamError(
                f"the vLLM replicas did not start on Ray Serve: {_first_line(exc)}{where}"
            ) from exc
        return cls(handle, board, plan.timeout_s, stale_after_s=3 * health_period_s + plan.health_timeout_s)

    @asynccontextmanager
    async def lease(
        self, model: str, adapter_path: Path | None, reload: bool = False
    ) -> AsyncIterator[VllmClient]:
        handle = self._handle.options(multiplexed_model_id=model if adapter_path is not None else "")
        call = handle.lease.remote(str(adapter_path) if adapter_path is not None else None, reload)
        try:
            granted = await asyncio.wait_for(call.__anext__(), self._timeout_s)
        except (TimeoutError, StopAsyncIteration) as exc:
            call.cancel()
            raise UpstreamError(f"no vLLM replica took the request: {type(exc).__name__}") from exc
        except asyncio.CancelledError:
            call.cancel()
            raise
        except Exception as exc:  # Ray's errors: the replica died, or could not load the adapter
            call.cancel()
            raise UpstreamError(f"the vLLM replica failed: {_first_line(exc)}") from exc
        try:
            yield self._client(str(granted["url"]), granted.get("api_key"))
        finally:
            call.cancel()

    async def load_lora(self, name: str, path: Path) -> None:
        """Loads it on the replica Ray picks for it (one that holds it, else the one with the fewest
        adapters), also if that replica's vLLM forgot it; other replicas load it when a request needs it."""
        async with self.lease(name, path, reload=True):
            pass

    async def unload_lora(self, name: str) -> None:
        """Nothing: a version no tenant uses any more ages out of each replica's LRU of adapters."""

    async def healthy(self, timeout_s: float) -> bool:
        return any(stats.healthy for stats in await self.describe())

    async def describe(self) -> list[ReplicaStats]:
        stats: list[ReplicaStats] = await self._board.get.remote()
        now = time.time()
        for replica in stats:
            if now - replica.at > self._stale_after_s:
                replica.healthy = False  # it stopped reporting: dead, or being replaced
        return stats

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()

    def shutdown(self) -> None:
        """Removes the replicas (and their vLLMs) and leaves the Ray cluster."""
        import ray
        from ray import serve

        serve.delete(APP)
        ray.shutdown()

    def _client(self, url: str, api_key: str | None) -> VllmClient:
        key = (url, api_key)
        if key not in self._clients:
            self._clients[key] = VllmClient(url, self._timeout_s, api_key=api_key)
        return self._clients[key]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1][:300] if text else type(exc).__name__
