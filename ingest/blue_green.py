"""Blue-green collections: a model or chunking change builds a new collection beside the live one.

The name the service queries (settings.collection) is a Qdrant alias of the live physical collection,
`<alias>__<fingerprint of model, chunking and BM25 settings>`. What it keeps:

- A run whose settings match the live collection's updates it in place, incrementally, as before.
- A run with other settings writes to the collection named for them, beside the live one. Its name is
  derived from the settings, so a killed build is resumed by the next run with the same settings: the
  incremental plan reads what the build already holds. Any other `<alias>__*` collection, neither live nor
  this run's, is left over from an abandoned build or a switch killed before its clean-up, and is deleted.
- A tenant counts as built into the new collection only once its run finished: the mark is cleared when a
  run starts and set when it ends. The alias moves, in one atomic call, when every required tenant is
  marked (the live collection's tenants, or the tenants a caller names, e.g. a config's); then the old
  collection is deleted. Until then every query goes to the old collection, so a kill at any moment leaves
  the alias on a complete index.
- The first index creates the physical collection and the alias at once. A store from before aliases holds
  a plain collection under the alias's name: it stays the live index (updated in place) until the first
  rebuild is complete; it is deleted just before the alias takes its name.
- On a cluster, a new collection is created with the cluster settings, and with custom sharding it gets a
  shard key of its own for each tenant promoted in the live one (sharding.py): a rebuild keeps big tenants
  apart.
"""

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from qdrant_client import models as qm

from ragserve.ingest.edge_store import EdgeClient
from ragserve.ingest.index import IndexSpec, QdrantIndex
from ragserve.ingest.sharding import check_sharding_method, tenant_shard_keys

__all__ = ["BuildTarget", "Collections", "LiveCollection", "physical_name"]

_BUILT = "ragserve_built:"  # + tenant: a collection-metadata mark, one key per tenant so marks never race


def physical_name(alias: str, spec: IndexSpec) -> str:
    """The collection that holds vectors made with spec, served under alias once complete."""
    return f"{alias}__{spec.fingerprint}"


@dataclass(frozen=True)
class LiveCollection:
    """The physical collection the alias points at now, and what its vectors were made with."""

    name: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class BuildTarget:
    """Where a re-index run writes: the live collection, or a new one (building) beside it."""

    name: str
    building: bool


class Collections:
    """The alias the service queries and the physical collections behind it."""

    def __init__(self, index: QdrantIndex) -> None:
        self.index = index
        self.client = index.client
        self.alias = index.collection
        self._physical = re.compile(rf"^{re.escape(self.alias)}__[0-9a-f]{{16}}$")

    def physical_name(self, spec: IndexSpec) -> str:
        return physical_name(self.alias, spec)

    def live_name(self) -> str | None:
        """The collection queries reach now, or None before the first index."""
        with self.index.lock:
            for alias in self.client.get_aliases().aliases:
                if alias.alias_name == self.alias:
                    return alias.collection_name
            # No alias: a plain collection under that name is a store from before aliases.
            return self.alias if self.client.collection_exists(self.alias) else None

    def live(self) -> LiveCollection | None:
        with self.index.lock:
            name = self.live_name()
            return None if name is None else LiveCollection(name, self.index.view(name).metadata())

    def target(self, spec: IndexSpec) -> BuildTarget:
        """The collection a run with spec writes to, created if missing; orphans of other builds go."""
        with self.index.lock:
            live = self.live_name()
            if live is not None:
                check_sharding_method(self.client, live, self.index.layout)
            if live is not None and self._fingerprint(live) == spec.fingerprint:
                name = live
            else:
                name = self.physical_name(spec)
            view = self.index.view(name)
            if name == live or name in self._collection_names():
                view.ensure_payload_indexes()  # the live one, or a killed build resumed where it stopped
            else:
                promoted = tenant_shard_keys(self.client, live, self.index.layout) if live else set()
                view.create(spec, promoted)
            self._delete_orphans(keep={live, name})
            if live is None:
                self._point_alias_at(name)
                return BuildTarget(name, building=False)
            return BuildTarget(name, building=name != live)

    def begin_tenant(self, target: BuildTarget, tenant: str) -> None:
        """A tenant being (re)built is not complete until finish_tenant, whatever a previous run left."""
        if target.building:
            with self.index.lock:
                self.client.update_collection(target.name, metadata={_BUILT + tenant: None})

    def finish_tenant(
        self, target: BuildTarget, tenant: str, required: Collection[str] | None = None
    ) -> list[str]:
        """Marks the tenant built; switches the alias once all required tenants are. Returns those missing.

        `required`: the tenants the new collection must hold before it goes live; by default every tenant
        the live collection holds (so re-indexing tenants one by one completes the build).
        """
        if not target.building:
            return []
        with self.index.lock:
            self.client.update_collection(target.name, metadata={_BUILT + tenant: True})
            live = self.live_name()
            if live is None or live == target.name:
                return []
            needed = set(required) if required is not None else self._tenants(live)
            built = {
                key.removeprefix(_BUILT)
                for key, value in self.index.view(target.name).metadata().items()
                if key.startswith(_BUILT) and value
            }
            missing = sorted(needed - built)
            if not missing:
                self._switch(live, target.name)
            return missing

    def erase_tenant(self, tenant: str) -> list[str]:
        """Deletes the tenant's points, and its built mark, from the live collection and any build beside it
        (waiting for each delete). Returns the collections it looked in.

        The embedded store then rewrites each of them without the deleted points (EdgeClient.compact), so no
        byte of the tenant stays in its files. A Qdrant server drops them from its files when its optimizer
        vacuums the segments and its write-ahead log moves on; every read leaves them out at once.
        """
        with self.index.lock:
            names = self.physical_names()
            for name in names:
                view = self.index.view(name)
                view.delete_tenant(tenant)
                if _BUILT + tenant in view.metadata():
                    self.client.update_collection(name, metadata={_BUILT + tenant: None})
        if isinstance(self.client, EdgeClient):
            for name in names:  # outside the index's lock: searches and writes go on meanwhile
                try:
                    self.client.compact(name)
                except ValueError:
                    if self.client.collection_exists(name):
                        raise  # else a switch deleted it meanwhile, and its files with it
        return names

    def physical_names(self) -> list[str]:
        """The collections under the alias: the live one and any build beside it."""
        with self.index.lock:
            return sorted(n for n in self._collection_names() if n == self.alias or self._physical.match(n))

    def _switch(self, old: str, new: str) -> None:
        if old == self.alias:
            # The plain collection of a store from before aliases holds the name the alias needs. Only a
            # kill between these two calls leaves no live index; the next run adopts the complete build.
            self.client.delete_collection(old)
            self._point_alias_at(new)
            return
        self.client.update_collection_aliases(
            change_aliases_operations=[
                qm.DeleteAliasOperation(delete_alias=qm.DeleteAlias(alias_name=self.alias)),
                qm.CreateAliasOperation(
                    create_alias=qm.CreateAlias(collection_name=new, alias_name=self.alias)
                ),
            ]
        )
        self.client.delete_collection(old)

    def _point_alias_at(self, name: str) -> None:
        create = qm.CreateAlias(collection_name=name, alias_name=self.alias)
        self.client.update_collection_aliases(
            change_aliases_operations=[qm.CreateAliasOperation(create_alias=create)]
        )

    def _fingerprint(self, name: str) -> str | None:
        return self.index.view(name).metadata().get("ragserve_fingerprint")

    def _tenants(self, name: str) -> set[str]:
        facet = self.client.facet(name, key="tenant", limit=1_000_000, exact=True)
        return {str(hit.value) for hit in facet.hits}

    def _collection_names(self) -> set[str]:
        return {c.name for c in self.client.get_collections().collections}

    def _delete_orphans(self, keep: set[str | None]) -> None:
        for name in self._collection_names():
            if self._physical.match(name) and name not in keep:
                self.client.delete_collection(name)
