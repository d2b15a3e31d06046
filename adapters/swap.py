"""Per-tenant adapters in a running vLLM server, swapped without a restart and without failing a request.

A swap is: validate, load the new version under its own served name, persist the assignment, switch the
tenant's mapping (one dict assignment on the event loop, so atomic for requests), and unload the old
version once the last request using it has finished. A request takes its served name and a lease on it in
one step, with no await in between, so it runs to the end on the version it started with.
"""

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol

from ragserve.adapters.assignments import AssignmentStore
from ragserve.adapters.registry import AdapterRegistry, AdapterVersion
from ragserve.adapters.validation import AdapterLimits, BaseModelInfo, validate
from ragserve.errors import InvalidTenantError, RagserveError, UpstreamError, UpstreamRejectedError

__all__ = ["AdapterSwitch", "LoraServer"]

log = logging.getLogger("ragserve.adapters")


class LoraServer(Protocol):
    async def load_lora(self, name: str, path: Path) -> None: ...

    async def unload_lora(self, name: str) -> None: ...


class AdapterSwitch:
    def __init__(
        self,
        server: LoraServer,
        registry: AdapterRegistry,
        base: BaseModelInfo,
        limits: AdapterLimits,
        store: AssignmentStore,
        tenants: Iterable[str],
    ) -> None:
        self._server = server
        self._registry = registry
        self._base = base
        self._limits = limits
        self._store = store
        self._current: dict[str, AdapterVersion | None] = dict.fromkeys(tenants)
        self._loaded: dict[str, AdapterVersion] = {}  # served name -> version, as loaded into vLLM
        self._in_flight: Counter[str] = Counter()
        self._retired: set[str] = set()
        self._lock = asyncio.Lock()
        self._refused: dict[str, str] = {}  # tenant -> a version another process assigned it, refused here
        self._unloads: set[asyncio.Task[None]] = set()

    async def start(self, configured: dict[str, str]) -> None:
        """Each tenant's persisted assignment, else its configured one, validated and loaded."""
        effective = await asyncio.to_thread(self._store.effective, configured)
        for tenant, ref in effective.items():
            if not ref or tenant not in self._current:
                continue
            version = await asyncio.to_thread(self._validated, ref)
            self._current[tenant] = version
            self._loaded[version.served_name] = version
            try:
                await self._server.load_lora(version.served_name, version.path)
            except (UpstreamError, UpstreamRejectedError) as exc:  # its first request loads it, or says why
                log.warning("adapter %s not loaded yet: %s", version.ref, exc)

    def current(self, tenant: str) -> AdapterVersion | None:
        return self._current.get(tenant)

    def add_tenant(self, tenant: str) -> None:
        """A tenant created while the service runs: on the base model until it is assigned an adapter."""
        self._current.setdefault(tenant, None)

    def remove_tenant(self, tenant: str) -> None:
        """A deleted tenant: its adapter is unloaded after its last request, unless another tenant uses it."""
        old = self._current.pop(tenant, None)
        self._refused.pop(tenant, None)
        if old is not None:
            self._retire(old.served_name)

    @property
    def registry(self) -> AdapterRegistry:
        """The registry this switch validates and loads versions from."""
        return self._registry

    def path_of(self, served: str) -> Path | None:
        """Where the adapter served under this name lies, for a replica that has to load it; None: base."""
        version = self._loaded.get(served)
        return version.path if version is not None else None

    def assignments(self) -> dict[str, str]:
        return {tenant: version.ref if version else "" for tenant, version in self._current.items()}

    @asynccontextmanager
    async def using(self, served: str) -> AsyncIterator[None]:
        """Holds a served name for one request; a retired version is unloaded when its last lease ends."""
        self._in_flight[served] += 1
        try:
            yield
        finally:
            self._in_flight[served] -= 1
            if self._in_flight[served] <= 0 and served in self._retired:
                self._schedule_unload(served)

    async def assign(self, tenant: str, ref: str) -> AdapterVersion | None:
        """Validates and loads before switching: a refused adapter leaves the tenant where it was."""
        if tenant not in self._current:
            raise InvalidTenantError(f"unknown tenant {tenant!r}")
        async with self._lock:
            return await self._switch(tenant, ref, persist=True)

    async def follow(self, tenant: str, assigned: str | None) -> None:
        """The tenant's assignment as the database holds it, read with its key: when another process that
        shares the database assigned another version, this one loads and switches to it too, before the
        request goes on. A version this process cannot validate or load is logged once, and the tenant
        stays where it was here. Without a change it costs a comparison.

        The key's read may be older than a swap made here since (read before the swap was persisted,
        compared after it switched): a change is read again under the swap lock, and only what the
        database says then is followed, so a stale read never switches a tenant back."""
        if assigned is None or not self._may_follow(tenant, assigned):
            return
        async with self._lock:
            assigned = await asyncio.to_thread(self._store.get, tenant)
            if assigned is None or not self._may_follow(tenant, assigned):
                return
            try:
                await self._switch(tenant, assigned, persist=False)
            except RagserveError as exc:
                self._refused[tenant] = assigned
                log.error("tenant %s was assigned %s in another process; not here: %s", tenant, assigned, exc)

    def _may_follow(self, tenant: str, assigned: str) -> bool:
        """A change to follow: a known tenant, not what it has, not refused already (logged)."""
        return (
            tenant in self._current
            and not self._serves(tenant, assigned)
            and self._refused.get(tenant) != assigned
        )

    def _serves(self, tenant: str, ref: str) -> bool:
        current = self._current.get(tenant)
        return (current.ref if current is not None else "") == ref

    async def _switch(self, tenant: str, ref: str, persist: bool) -> AdapterVersion | None:
        """Loads `ref` (NAME@VERSION; "": the base model), persists it if asked, and switches the tenant to
        it. The caller holds the lock."""
        new = await self._prepare(ref) if ref else None
        if persist:
            await asyncio.to_thread(self._store.set, tenant, new.ref if new else "")
        if tenant not in self._current:  # deleted meanwhile
            raise InvalidTenantError(f"unknown tenant {tenant!r}")
        self._refused.pop(tenant, None)
        old = self._current[tenant]
        self._current[tenant] = new  # the switch: requests from here on get the new version
        if new is not None:
            self._retired.discard(new.served_name)
        if old is not None and (new is None or old.served_name != new.served_name):
            self._retire(old.served_name)
        log.info("tenant %s now uses %s", tenant, new.ref if new else "the base model")
        return new

    async def reload(self, served: str) -> bool:
        """After vLLM restarted and forgot its adapters: load this one again. False if it is not ours."""
        version = self._loaded.get(served)
        if version is None:
            return False
        async with self._lock:
            await self._server.load_lora(served, version.path)
        log.warning("vLLM had lost adapter %s; loaded it again", served)
        return True

    async def reload_all(self) -> int:
        """After vLLM restarted: every tenant's adapter loaded again before a request needs it. How many."""
        versions = {v.served_name: v for v in self._current.values() if v is not None}
        loaded = 0
        async with self._lock:
            for served, version in versions.items():
                try:
                    await self._server.load_lora(served, version.path)
                except RagserveError as exc:  # its next request tries again, through the 404 retry
                    log.warning("adapter %s not loaded again yet: %s", version.ref, exc)
                    continue
                loaded += 1
        log.warning("loaded %d of %d adapters again", loaded, len(versions))
        return loaded

    async def aclose(self) -> None:
        for task in list(self._unloads):
            await asyncio.gather(task, return_exceptions=True)

    async def _prepare(self, ref: str) -> AdapterVersion:
        version = await asyncio.to_thread(self._validated, ref)
        await self._server.load_lora(version.served_name, version.path)
        self._loaded[version.served_name] = version
        return version

    def _validated(self, ref: str) -> AdapterVersion:
        version = self._registry.resolve(ref)
        validate(version, self._base, self._limits)
        return version

    def _retire(self, served: str) -> None:
        if any(v is not None and v.served_name == served for v in self._current.values()):
            return  # another tenant still uses it
        self._retired.add(served)
        if self._in_flight[served] <= 0:
            self._schedule_unload(served)

    def _schedule_unload(self, served: str) -> None:
        self._retired.discard(served)
        self._loaded.pop(served, None)
        task = asyncio.get_running_loop().create_task(self._unload(served))
        self._unloads.add(task)
        task.add_done_callback(self._unloads.discard)

    async def _unload(self, served: str) -> None:
        async with self._lock:
            if served in self._loaded or self._in_flight[served] > 0:
                return  # assigned again, or leased again, since it was retired
            try:
                await self._server.unload_lora(served)
            except RagserveError as exc:  # vLLM keeps an idle adapter; nothing is served wrong by it
                log.warning("could not unload adapter %s: %s", served, exc)
                return
        log.info("unloaded adapter %s", served)
