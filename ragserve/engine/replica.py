"""vLLM replicas as a Ray Serve deployment: Ray places them, routes by adapter, and replaces the dead.

The protocol, in prose first:
- Each replica fronts one vLLM server: one it starts on its own node (`ragserve up --replicas N`), or one that
  already runs (the rank-th of RAGSERVE_VLLM_URLS).
- The service asks for a *lease* for a request: `lease(adapter_path)` called through a handle whose
  `multiplexed_model_id` is the adapter's served name. Ray Serve's multiplexed routing sends it to a replica
  that already holds that adapter, unless all such replicas are at `max_ongoing_requests`; then to the replica
  holding the fewest. There, `@serve.multiplexed` loads the adapter into that replica's vLLM on a miss and
  evicts the least recently used one past `max_loras`.
- The lease yields the replica's vLLM URL and key, then stays open (counted by Ray as an ongoing request, so
  the routing sees the load) until the service cancels it when its request is over. Tokens go from vLLM to
  the service over HTTP directly, never through Ray's object store.
- An evicted adapter is unloaded from vLLM only after the last lease using it ends, so an eviction never fails
  a request that is already running on it.
- `check_health` asks the replica's vLLM; when it fails, Ray Serve takes the replica out of routing and starts
  a new one in its place (with a new vLLM, or waiting for the same URL to answer again).
"""

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ragserve.engine.replica_board import ReplicaStats, board, queue_depth
from ragserve.engine.vllm_client import VllmClient
from ragserve.engine.vllm_process import VllmProcess, VllmSpec, free_port, start_key, wait_for_ok
from ragserve.errors import UpstreamError

__all__ = ["ReplicaPlan", "VllmReplica", "deployment"]

log = logging.getLogger("ragserve.replica")

_LEASE_CAP_S = 3600.0  # a lease the service forgot (it died) ends on its own


@dataclass(frozen=True)
class ReplicaPlan:
    """What every replica runs: a vLLM of its own (`spec`), or the rank-th of `urls`, already running."""

    max_loras: int
    timeout_s: float
    spec: VllmSpec | None = None
    log_dir: Path | None = None
    urls: tuple[str, ...] = ()
    api_key: str | None = field(default=None, repr=False)  # the running servers' key (RAGSERVE_VLLM_API_KEY)
    health_timeout_s: float = 5.0
    start_timeout_s: float = 600.0
    per_node: int = 1  # how many replicas share a machine's cores (CPU only)


class _Adapter:
    """An adapter loaded into this replica's vLLM.

    Ray Serve calls `__del__` in a worker thread when it evicts the adapter, and the garbage collector calls
    it again later: the first call unloads (on the replica's event loop, once no lease holds it), any later
    one does nothing. A coroutine `__del__` would leave the collector's call an un-awaited coroutine."""

    def __init__(self, name: str, vllm: VllmClient, loaded: list[str]) -> None:
        self.name = name
        self.leases = 0
        self._vllm = vllm
        self._loaded = loaded
        self._loop = asyncio.get_running_loop()
        self._evicted = False

    def __del__(self) -> None:
        if self._evicted:
            return
        self._evicted = True
        if threading.current_thread() is threading.main_thread() or _on_loop(self._loop):
            return  # not Ray's eviction: never block an event loop
        asyncio.run_coroutine_threadsafe(self._unload(), self._loop).result()

    async def _unload(self) -> None:
        while self.leases > 0:  # requests still running on it finish first
            await asyncio.sleep(0.05)
        with contextlib.suppress(ValueError):
            self._loaded.remove(self.name)
        try:
            await self._vllm.unload_lora(self.name)
        except UpstreamError as exc:  # vLLM keeps an idle adapter; nothing is served wrong by it
            log.warning("could not unload adapter %s: %s", self.name, exc)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class VllmReplica:
    """One replica: its vLLM, the adapters it holds, its figures. Runs in a Ray actor (deployment())."""

    def __init__(self, plan: ReplicaPlan) -> None:
        from ray import serve

        self.plan = plan
        self.rank = int(serve.get_replica_context().rank.rank)
        self.process: VllmProcess | None = None
        self.stats = ReplicaStats(self.rank, "")
        self._paths: dict[str, Path] = {}
        if plan.spec is not None:
            self.process = _start_own(plan.spec, plan, self.rank)
            url, key = self.process.url, self.process.api_key
        else:  # a server that runs already: this replica starts (or starts again) once it answers
            url, key = plan.urls[self.rank], plan.api_key
            if not wait_for_ok(f"{url}/health", None, plan.start_timeout_s):
                raise UpstreamError(f"vLLM at {url} did not answer /health in time")
        self.stats.url = url
        self.key = key
        self.board = board()
        self.vllm = VllmClient(url, plan.timeout_s, api_key=key)

        async def adapter(name: str) -> _Adapter:
            return await self._load(name)

        # Ray Serve's LRU of `max_loras` adapters; a plain function, as the limit is known only here.
        self.adapter = serve.multiplexed(max_num_models_per_replica=plan.max_loras)(adapter)

    async def _load(self, name: str) -> _Adapter:
        await self.vllm.load_lora(name, self._paths[name])
        self.stats.adapter_loads += 1
        self.stats.adapters.append(name)
        return _Adapter(name, self.vllm, self.stats.adapters)

    async def lease(
        self, adapter_path: str | None = None, reload: bool = False
    ) -> AsyncIterator[dict[str, Any]]:
        """This replica's vLLM for one request, with its adapter loaded; held until cancelled.
        `reload`: make sure vLLM still has it (it may have restarted and forgotten it)."""
        from ray import serve

        name = serve.get_multiplexed_model_id()
        self.stats.requests += 1
        held: _Adapter | None = None
        if name and adapter_path:
            if name in self.stats.adapters:
                self.stats.adapter_hits += 1
            self._paths[name] = Path(adapter_path)
            held = await self.adapter(name)
            held.leases += 1
            if reload:
                await self.vllm.load_lora(name, self._paths[name])
        self.board.put.remote(self.rank, self.stats)  # the counts at once; the queue at the health check
        try:
            yield {"url": self.stats.url, "api_key": self.key, "rank": self.rank}
            await asyncio.sleep(_LEASE_CAP_S)
        finally:
            if held is not None:
                held.leases -= 1

    async def check_health(self) -> None:
        """Ray Serve's health check, every `health_period_s`; it also posts the figures to the board."""
        healthy = (self.process is None or self.process.returncode is None) and await self.vllm.healthy(
            self.plan.health_timeout_s
        )
        self.stats.healthy = healthy
        if healthy:
            await self._reload_forgotten()
        self.board.put.remote(self.rank, await self.report())
        if not healthy:
            raise RuntimeError(f"vLLM at {self.stats.url} does not answer /health")

    async def _reload_forgotten(self) -> None:
        """A server restarted behind this replica (between two checks) has forgotten its adapters."""
        try:
            present = await self.vllm.served_models()
            for name in [n for n in self.stats.adapters if n not in present]:
                await self.vllm.load_lora(name, self._paths[name])
                log.warning("vLLM at %s had lost adapter %s; loaded it again", self.stats.url, name)
        except UpstreamError as exc:  # the next check tries again
            log.warning("could not check the adapters of vLLM at %s: %s", self.stats.url, exc)

    async def report(self) -> ReplicaStats:
        """Its figures now, with vLLM's own queue gauges."""
        with contextlib.suppress(UpstreamError):
            self.stats.running, self.stats.waiting = queue_depth(await self.vllm.metrics_text())
        self.stats.at = time.time()
        return self.stats

    def __del__(self) -> None:
        if self.process is not None:
            self.process.stop()


def deployment(
    plan: ReplicaPlan, replicas: int, max_ongoing: int, health_period_s: float, gpus: float
) -> Any:
    """The Ray Serve deployment of `replicas` vLLM replicas, bound and ready for `serve.run`."""
    from ray import serve

    deployed: Any = serve.deployment(
        VllmReplica,
        name="vllm",
        num_replicas=replicas,
        max_ongoing_requests=max_ongoing,
        health_check_period_s=health_period_s,
        health_check_timeout_s=plan.health_timeout_s,
        graceful_shutdown_timeout_s=30,
        ray_actor_options={"num_cpus": 0, "num_gpus": gpus},
    )
    return deployed.bind(plan)


def _start_own(spec: VllmSpec, plan: ReplicaPlan, rank: int) -> VllmProcess:
    """A vLLM for this replica on a free port of its node, with its own key, on its share of the cores."""
    cores = _share_of_cores(rank, plan.per_node)
    spec = replace(spec, port=free_port(), api_key=start_key(None), omp_cpus=cores or spec.omp_cpus)
    process = VllmProcess(spec, (plan.log_dir or Path(".")) / f"vllm-replica-{rank}.log")
    process.start()
    process.wait_healthy(plan.start_timeout_s)
    return process


def _share_of_cores(rank: int, per_node: int) -> str | None:
    """vLLM's CPU backend binds its threads to cores: replicas sharing a machine get disjoint ones."""
    ours = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if per_node <= 1 or not ours:
        return None
    per = max(1, len(ours) // per_node)
    start = (rank % per_node) * per % len(ours)
    return ",".join(str(c) for c in ours[start : start + per])
