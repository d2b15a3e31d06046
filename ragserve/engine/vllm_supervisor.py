"""Keeps vLLM serving without a restart of the API: watches it, and starts the one `ragserve up` started again
when it dies.

The client marks vLLM unreachable the moment a call loses its connection. This loop, a task in the API's
lifespan, marks it reachable again only once /health answers and `on_back` (the service: load every tenant's
adapter again) has run, so /readyz never says ready for a vLLM that has forgotten the adapters. A vLLM that
ragserve started and that exits, or stops answering /health for `silent_after_s`, is stopped with its whole
process group and started again on the same port, after waits that double from 1 s up to 60 s and start over
once it has stayed up for `Backoff.reset_after_s`. A vLLM someone else runs (`--vllm-url`) is only watched.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ragserve.engine.vllm_client import VllmClient
from ragserve.engine.vllm_process import VllmProcess

__all__ = ["Backoff", "VllmSupervisor"]

log = logging.getLogger("ragserve.engine")

_MAX_DOUBLINGS = 32  # far past any cap; keeps 2**n a small number


@dataclass
class Backoff:
    """The wait before each restart: first_s, doubled each time up to cap_s, and first_s again after a
    restart that stayed up for reset_after_s."""

    first_s: float = 1.0
    cap_s: float = 60.0
    reset_after_s: float = 300.0
    _restarts: int = 0
    _up_since: float | None = None

    def next_delay(self, now: float) -> float:
        """The wait before the restart that vLLM's death at `now` calls for."""
        if self._up_since is not None and now - self._up_since >= self.reset_after_s:
            self._restarts = 0
        self._up_since = None
        delay = min(self.cap_s, self.first_s * 2.0 ** min(self._restarts, _MAX_DOUBLINGS))
        self._restarts += 1
        return delay

    def up(self, now: float) -> None:
        """A restart has come up and answers."""
        self._up_since = now


def _nothing() -> None:
    return None


async def _to_the_end(blocking: Callable[[], None]) -> None:
    """Runs it in a thread. Cancelled (the app is shutting down), it still waits for it to end: a restart
    cut loose could start vLLM after `ragserve up` has stopped it, and leave it running."""
    done = asyncio.ensure_future(asyncio.to_thread(blocking))
    try:
        await asyncio.shield(done)
    except asyncio.CancelledError:
        await done
        raise


class VllmSupervisor:
    """Watches one vLLM through its client; restarts it if `process` (one ragserve started) is given."""

    def __init__(
        self,
        client: VllmClient,
        process: VllmProcess | None,
        on_back: Callable[[], Awaitable[object]],
        on_restart: Callable[[], None] = _nothing,
        *,
        poll_s: float = 1.0,
        probe_timeout_s: float = 5.0,
        silent_after_s: float = 30.0,
        start_timeout_s: float = 400.0,
        backoff: Backoff | None = None,
    ) -> None:
        self._client = client
        self._process = process
        self._on_back = on_back
        self._on_restart = on_restart
        self._poll_s = poll_s
        self._probe_timeout_s = probe_timeout_s
        self._silent_after_s = silent_after_s
        self._start_timeout_s = start_timeout_s
        self._backoff = backoff or Backoff()

    async def run(self) -> None:
        """Until cancelled, which the app's shutdown does."""
        silent_since: float | None = None
        while True:
            await asyncio.sleep(self._poll_s)
            process = self._process
            if process is not None and (code := process.returncode) is not None:
                await self._restart(process, f"vLLM exited with code {code}")
                silent_since = None
            elif await self._client.healthy(self._probe_timeout_s):
                silent_since = None
                if not self._client.reachable:
                    await self._back()
            else:
                now = time.monotonic()
                silent_since = now if silent_since is None else silent_since
                if process is not None and now - silent_since >= self._silent_after_s:
                    silence = f"vLLM has not answered /health for {now - silent_since:.0f}s"
                    await self._restart(process, silence)
                    silent_since = None

    async def _restart(self, process: VllmProcess, reason: str) -> None:
        self._client.mark_unreachable()
        log.error("%s; its log: %s", reason, process.log_path)
        while True:
            delay = self._backoff.next_delay(time.monotonic())
            log.warning("restarting vLLM on %s in %.0fs", process.url, delay)
            await asyncio.sleep(delay)
            started = time.monotonic()
            await _to_the_end(process.restart)
            self._on_restart()
            if await self._answers(process):
                break
            code = process.returncode
            how = f"exited with code {code}" if code is not None else "did not answer /health in time"
            log.error("vLLM %s after its restart; its log: %s", how, process.log_path)
        self._backoff.up(time.monotonic())
        log.warning("vLLM restarted (pid %s), healthy after %.0fs", process.pid, time.monotonic() - started)
        await self._back()

    async def _answers(self, process: VllmProcess) -> bool:
        """True once /health answers; False if the process exits first or time runs out."""
        deadline = time.monotonic() + self._start_timeout_s
        while time.monotonic() < deadline and process.returncode is None:
            if await self._client.healthy(self._probe_timeout_s):
                return True
            await asyncio.sleep(0.5)
        return False

    async def _back(self) -> None:
        await self._on_back()
        self._client.mark_reachable()
        log.warning("vLLM at %s answers again", self._client.base_url)
