"""Qdrant as a cluster: the cluster settings a collection is created with, and tiered multitenancy's routing.

With custom sharding on (a server or cluster only), a collection holds a shared fallback shard key, where
every small tenant lives, and a shard key of its own for each tenant promoted out of it (promotion.py). Every
read and write names both, as Qdrant's ShardKeyWithFallback: Qdrant sends it to the tenant's own shard once
that is active, else to the fallback. Every request is still filtered by tenant, as the fallback holds many.
With it off, no request names a shard key, so the embedded store sees the same calls as before.
"""

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from qdrant_client import QdrantClient
from qdrant_client import models as qm

from ragserve.errors import ShardingError
from ragserve.ingest.edge_store import EdgeClient
from ragserve.ingest.embedded import StoreClient
from ragserve.settings import Settings

__all__ = [
    "FALLBACK_SHARD_KEY",
    "ClusterLayout",
    "check_sharding_method",
    "server_client",
    "tenant_shard_keys",
]

# Tenant names start with a letter or digit (tenancy.py), so no tenant's own shard key can take this name.
FALLBACK_SHARD_KEY = "_shared"


@dataclass(frozen=True)
class ClusterLayout:
    """How a new collection spreads over a cluster, and whether tenants are routed by shard key."""

    shard_number: int = 1
    replication_factor: int = 1
    write_consistency_factor: int = 1
    custom_sharding: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> "ClusterLayout":
        return cls(
            shard_number=settings.qdrant_shard_number,
            replication_factor=settings.qdrant_replication_factor,
            write_consistency_factor=settings.qdrant_write_consistency_factor,
            custom_sharding=settings.qdrant_custom_sharding,
        )

    def collection_params(self) -> dict[str, Any]:
        """create_collection's cluster arguments (the embedded store accepts and ignores them)."""
        params: dict[str, Any] = {
            "shard_number": self.shard_number,
            "replication_factor": self.replication_factor,
            "write_consistency_factor": self.write_consistency_factor,
        }
        if self.custom_sharding:
            params["sharding_method"] = qm.ShardingMethod.CUSTOM
        return params

    def route(self, tenant: str) -> dict[str, Any]:
        """The shard_key_selector argument of a tenant's reads and writes; none without custom sharding."""
        if not self.custom_sharding:
            return {}
        return {"shard_key_selector": qm.ShardKeyWithFallback(target=tenant, fallback=FALLBACK_SHARD_KEY)}

    def create_shard_keys(self, client: StoreClient, collection: str, promoted: Collection[str] = ()) -> None:
        """A new collection's shard keys: the fallback, and one for each tenant promoted in the collection
        it replaces. They start empty, so they are created active at once."""
        if not self.custom_sharding:
            return
        client = server_client(client)
        # Qdrant's fallback may hold one shard only: small tenants share a single shard.
        client.create_shard_key(
            collection, FALLBACK_SHARD_KEY, shards_number=1, replication_factor=self.replication_factor
        )
        for tenant in sorted(promoted):
            client.create_shard_key(
                collection,
                tenant,
                shards_number=self.shard_number,
                replication_factor=self.replication_factor,
            )


def server_client(client: StoreClient) -> QdrantClient:
    """The client of a Qdrant server, for the cluster calls the embedded Edge store has not got (the settings
    already refuse custom sharding without a server URL)."""
    if isinstance(client, EdgeClient):
        raise ShardingError(
            "custom sharding needs a Qdrant server; the embedded Edge store has no shard keys"
        )
    return client


def tenant_shard_keys(client: StoreClient, collection: str, layout: ClusterLayout) -> set[str]:
    """The tenants with a shard key of their own in a collection; none without custom sharding."""
    if not layout.custom_sharding:
        return set()
    keys = server_client(client).list_shard_keys(collection).shard_keys or []
    return {str(k.key) for k in keys} - {FALLBACK_SHARD_KEY}


def check_sharding_method(client: StoreClient, collection: str, layout: ClusterLayout) -> None:
    """Refuses a collection whose sharding method is not the setting's: every request would fail on it."""
    method = client.get_collection(collection).config.params.sharding_method or qm.ShardingMethod.AUTO
    wanted = qm.ShardingMethod.CUSTOM if layout.custom_sharding else qm.ShardingMethod.AUTO
    if method != wanted:
        setting = "on" if layout.custom_sharding else "off"
        raise ShardingError(
            f"the collection {collection} was created with {method.value} sharding, but "
            f"RAGSERVE_QDRANT_CUSTOM_SHARDING is {setting}; a collection keeps its sharding method: "
            "set it back, or index into a new RAGSERVE_COLLECTION"
        )
