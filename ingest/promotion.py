"""Promote a big tenant from the shared fallback shard to a shard key of its own, without downtime.

Reads and writes name the tenant's own shard key with the fallback behind it (sharding.py), and Qdrant sends
them to the tenant's shard only once it is active. The steps follow Qdrant's tiered-multitenancy guide, in an
order where no read misses a point:

1. Create the tenant's shard key in the Partial state: requests still go to the fallback, which holds all.
2. Replicate the tenant's points from the fallback into it (Qdrant's replicate_points shard transfer; writes
   made meanwhile land in the fallback and are forwarded to the new shard).
3. Wait until Qdrant has made every replica of it Active, as it does when the transfer completes: from then
   on the tenant's requests go to its own shard, which holds everything the fallback did.
4. Only then delete the tenant's points from the fallback, where none of its requests looks any more.

Run again, it finishes a promotion that a kill or a timeout interrupted: a transfer under way is waited for;
a shard key whose copy failed (a Dead replica) or never began (no transfer under way, not active) is dropped
and the copy starts over, which is safe because until step 4 the fallback still holds every point; and step 4
is idempotent.
"""

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from qdrant_client import models as qm

from ragserve.errors import IndexNotFoundError, ShardingError, TenantNotFoundError
from ragserve.ingest.blue_green import Collections
from ragserve.ingest.index import QdrantIndex
from ragserve.ingest.sharding import (
    FALLBACK_SHARD_KEY,
    ClusterLayout,
    check_sharding_method,
    server_client,
    tenant_shard_keys,
)
from ragserve.ingest.tenancy import check_tenant

__all__ = ["Promotion", "promote_tenant"]


@dataclass(frozen=True)
class Promotion:
    """What a promotion did: the physical collection, the tenant's points now in its own shard, and whether
    this run created the shard key (False: it finished an interrupted promotion, or found one done)."""

    tenant: str
    collection: str
    points: int
    started: bool

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def promote_tenant(
    index: QdrantIndex,
    tenant: str,
    timeout_s: float = 600.0,
    waiting: Callable[[], None] | None = None,
    poll_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Promotion:
    """Moves a tenant's points from the fallback shard to a shard key of its own in the live collection;
    `waiting` is called once the copy is under way, before the wait for it."""
    check_tenant(tenant)
    layout = index.layout
    if not layout.custom_sharding:
        raise ShardingError(
            "custom sharding is off, so no tenant can have a shard of its own: set "
            "RAGSERVE_QDRANT_CUSTOM_SHARDING=true (it needs a Qdrant server and a collection created with it)"
        )
    collection = Collections(index).live_name()
    if collection is None:
        raise IndexNotFoundError("nothing is indexed yet: re-index the tenant's documents first")
    client = server_client(index.client)
    with index.lock:
        check_sharding_method(client, collection, layout)
        started = _needs_start(index, collection, tenant)
        if started:
            _start(index, collection, tenant, layout)
    if waiting is not None:
        waiting()
    _wait_active(index, collection, tenant, timeout_s, poll_s, sleep, clock)
    with index.lock:
        client.delete(
            collection,
            points_selector=qm.FilterSelector(filter=_tenant_filter(tenant)),
            shard_key_selector=FALLBACK_SHARD_KEY,
            wait=True,
        )
        points = client.count(
            collection, count_filter=_tenant_filter(tenant), shard_key_selector=tenant, exact=True
        ).count
    return Promotion(tenant, collection, points, started)


def _needs_start(index: QdrantIndex, collection: str, tenant: str) -> bool:
    """True when the tenant has no shard key of its own, or one whose copy failed or never began (dropped)."""
    client = server_client(index.client)
    if tenant not in tenant_shard_keys(client, collection, index.layout):
        return True
    info = client.collection_cluster_info(collection)
    states = _replica_states(info, tenant)
    if _all_active(states):
        return False
    if qm.ReplicaState.DEAD not in states and info.shard_transfers:
        return False  # the copy is under way
    client.delete_shard_key(collection, tenant)
    return True


def _start(index: QdrantIndex, collection: str, tenant: str, layout: ClusterLayout) -> None:
    """Steps 1 and 2: the tenant's shard key, Partial, and the transfer of its points into it."""
    client = server_client(index.client)
    flt = _tenant_filter(tenant)
    shared = client.count(collection, count_filter=flt, shard_key_selector=FALLBACK_SHARD_KEY, exact=True)
    if shared.count == 0:
        raise TenantNotFoundError(
            f"tenant {tenant!r} has no documents in the shared shard of {collection}: "
            "re-index it first (or it is not a tenant of this index)"
        )
    # QdrantClient.create_shard_key passes initial_state on to the server client as a keyword.
    client.create_shard_key(
        collection,
        tenant,
        shards_number=layout.shard_number,
        replication_factor=layout.replication_factor,
        initial_state=qm.ReplicaState.PARTIAL,
    )
    transfer = qm.ReplicatePoints(from_shard_key=FALLBACK_SHARD_KEY, to_shard_key=tenant, filter=flt)
    client.cluster_collection_update(collection, qm.ReplicatePointsOperation(replicate_points=transfer))


def _wait_active(
    index: QdrantIndex,
    collection: str,
    tenant: str,
    timeout_s: float,
    poll_s: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> None:
    """Step 3: returns once every replica of the tenant's shards is Active."""
    deadline = clock() + timeout_s
    while True:
        with index.lock:
            states = _replica_states(server_client(index.client).collection_cluster_info(collection), tenant)
        if _all_active(states):
            return
        if qm.ReplicaState.DEAD in states:
            raise ShardingError(
                f"copying tenant {tenant!r} into its own shard failed (a replica is Dead); the shared shard "
                "still holds and serves all its points: run the promotion again to start the copy over"
            )
        if clock() >= deadline:
            seen = ", ".join(sorted(str(s) for s in states)) or "no replica yet"
            raise ShardingError(
                f"tenant {tenant!r}'s own shard is not active after {timeout_s:g}s ({seen}); the copy goes "
                "on in Qdrant, and the shared shard serves the tenant meanwhile: run the promotion again to "
                "finish it"
            )
        sleep(poll_s)


def _replica_states(info: qm.CollectionClusterInfo, tenant: str) -> list[qm.ReplicaState]:
    """The state of every replica of the tenant's own shards, on the peer asked and on the others."""
    shards: list[qm.LocalShardInfo | qm.RemoteShardInfo] = [*info.local_shards, *info.remote_shards]
    return [shard.state for shard in shards if shard.shard_key == tenant]


def _all_active(states: list[qm.ReplicaState]) -> bool:
    return bool(states) and all(state == qm.ReplicaState.ACTIVE for state in states)


def _tenant_filter(tenant: str) -> qm.Filter:
    return qm.Filter(must=[qm.FieldCondition(key="tenant", match=qm.MatchValue(value=tenant))])
