"""Promoting a tenant to a shard of its own, on a fake cluster that routes as Qdrant documents (no Qdrant
server can run here): the requests, their order, and a tenant's reads finding every point at every step."""

import pytest
from qdrant_client import models as qm

from ragserve.errors import IndexNotFoundError, ShardingError, TenantNotFoundError
from ragserve.ingest.chunking import Chunk
from ragserve.ingest.index import QdrantIndex
from ragserve.ingest.promotion import Promotion, promote_tenant
from ragserve.ingest.sharding import FALLBACK_SHARD_KEY, ClusterLayout
from ragserve.ingest.sparse import SparseEmbedding
from tests.ingest.fake_cluster import Call, FakeCluster
from tests.ingest.test_sharding import CLUSTER, live_index

ACME = qm.Filter(must=[qm.FieldCondition(key="tenant", match=qm.MatchValue(value="acme"))])


def add_docs(index: QdrantIndex, tenant: str, n: int) -> None:
    chunks = [Chunk("doc.md", i, "", f"{tenant} {i}") for i in range(n)]
    sparse = [SparseEmbedding([1], [1.0])] * n
    index.upsert(tenant, chunks, [[0.0, 0.0, 0.0, 1.0]] * n, sparse, {"doc.md": ("h", n)})


def cluster_with_two_tenants(
    transfer_polls: int = 2, fail_transfer: bool = False
) -> tuple[FakeCluster, QdrantIndex]:
    fake = FakeCluster(transfer_polls, fail_transfer)
    live = live_index(fake)
    add_docs(live, "acme", 5)
    add_docs(live, "globex", 3)
    fake.calls.clear()
    return fake, QdrantIndex(fake.as_client(), "ragserve", layout=CLUSTER)


def promote(index: QdrantIndex, tenant: str = "acme", timeout_s: float = 5.0) -> Promotion:
    return promote_tenant(index, tenant, timeout_s=timeout_s, poll_s=0.0, sleep=lambda _: None)


def test_promotion_follows_qdrants_steps_in_order() -> None:
    fake, index = cluster_with_two_tenants()
    promotion = promote(index)
    writes = [c for c in fake.calls if c.name not in ("collection_cluster_info", "count")]
    [create, replicate, delete] = writes
    # 1. The tenant's own shard key, Partial until its points are in it.
    assert create.name == "create_shard_key" and create.args[1] == "acme"
    assert create.kwargs == {
        "shards_number": 2,
        "replication_factor": 2,
        "initial_state": qm.ReplicaState.PARTIAL,
    }
    # 2. Qdrant copies the tenant's points (only its own) from the fallback.
    assert replicate.name == "cluster_collection_update"
    assert replicate.args[1] == qm.ReplicatePointsOperation(
        replicate_points=qm.ReplicatePoints(
            from_shard_key=FALLBACK_SHARD_KEY, to_shard_key="acme", filter=ACME
        )
    )
    # 3. It waits for Qdrant to make the shard Active: polls, then 4. deletes acme (only) from the fallback.
    assert fake.names().index("collection_cluster_info") > fake.names().index("cluster_collection_update")
    assert delete.name == "delete"
    assert delete.kwargs["shard_key_selector"] == FALLBACK_SHARD_KEY
    assert delete.kwargs["points_selector"] == qm.FilterSelector(filter=ACME)
    shards = fake.collections[promotion.collection].shards
    assert len(shards["acme"]) == 5 and len(shards[FALLBACK_SHARD_KEY]) == 3
    assert {p["tenant"] for p in shards[FALLBACK_SHARD_KEY].values()} == {"globex"}
    assert promotion.points == 5 and promotion.started


def test_a_tenants_reads_find_every_point_at_every_step_of_the_promotion() -> None:
    fake, index = cluster_with_two_tenants(transfer_polls=3)
    collection = fake.aliases["ragserve"]
    everything = {t: fake.routed(collection, t, FALLBACK_SHARD_KEY) for t in ("acme", "globex")}
    seen: list[tuple[str, bool]] = []

    def check(call: Call) -> None:
        for tenant, ids in everything.items():
            seen.append((call.name, fake.routed(collection, tenant, FALLBACK_SHARD_KEY) == ids))

    fake.after_call = check
    promote(index)
    assert seen and all(ok for _, ok in seen), [name for name, ok in seen if not ok]
    # And the index's own reads, routed the same way, after it.
    fake.after_call = None
    assert index.count_chunks("acme") == 5 and index.count_chunks("globex") == 3
    assert set(index.document_states("acme")) == {"doc.md"}


def test_writes_during_the_copy_reach_the_tenants_new_shard() -> None:
    fake, index = cluster_with_two_tenants(transfer_polls=3)

    def write_during_copy(call: Call) -> None:
        if call.name == "cluster_collection_update":
            fake.after_call = None
            add_docs(index, "acme", 7)  # two more chunks, while Qdrant copies

    fake.after_call = write_during_copy
    promotion = promote(index)
    assert promotion.points == 7
    assert index.count_chunks("acme") == 7


def test_an_unknown_tenant_is_refused_and_nothing_is_created() -> None:
    fake, index = cluster_with_two_tenants()
    with pytest.raises(TenantNotFoundError, match="tenant 'initech' has no documents"):
        promote(index, "initech")
    assert not {"create_shard_key", "cluster_collection_update", "delete"} & set(fake.names())


def test_with_custom_sharding_off_promotion_is_refused_with_the_reason() -> None:
    fake = FakeCluster()
    live_index(fake, ClusterLayout())
    index = QdrantIndex(fake.as_client(), "ragserve", layout=ClusterLayout())
    with pytest.raises(ShardingError, match=r"custom sharding is off.*RAGSERVE_QDRANT_CUSTOM_SHARDING=true"):
        promote(index)
    assert "create_shard_key" not in fake.names()


def test_before_anything_is_indexed_promotion_says_so() -> None:
    index = QdrantIndex(FakeCluster().as_client(), "ragserve", layout=CLUSTER)
    with pytest.raises(IndexNotFoundError, match="nothing is indexed yet"):
        promote(index)


def test_a_promotion_that_times_out_is_finished_by_running_it_again() -> None:
    fake, index = cluster_with_two_tenants(transfer_polls=50)
    with pytest.raises(
        ShardingError, match=r"not active after 0s \(Partial, Partial\).*run the promotion again"
    ):
        promote(index, timeout_s=0)
    collection = fake.aliases["ragserve"]
    assert len(fake.collections[collection].shards[FALLBACK_SHARD_KEY]) == 8  # nothing deleted yet
    fake.calls.clear()
    promotion = promote(index, timeout_s=100)
    assert "create_shard_key" not in fake.names()  # the copy under way was waited for, not started again
    assert promotion.points == 5 and not promotion.started
    assert len(fake.collections[collection].shards[FALLBACK_SHARD_KEY]) == 3


def test_a_promotion_killed_before_the_copy_began_starts_the_copy_over() -> None:
    fake, index = cluster_with_two_tenants()
    collection = fake.aliases["ragserve"]
    # A run killed between its two first steps: the shard key exists, Partial, and nothing is copying.
    fake.create_shard_key(collection, "acme", replication_factor=2, initial_state=qm.ReplicaState.PARTIAL)
    fake.calls.clear()
    promotion = promote(index)
    assert [n for n in fake.names() if n not in ("collection_cluster_info", "count")] == [
        "delete_shard_key",
        "create_shard_key",
        "cluster_collection_update",
        "delete",
    ]
    assert promotion.points == 5


def test_a_failed_copy_is_an_error_and_the_shared_shard_keeps_serving_the_tenant() -> None:
    fake, index = cluster_with_two_tenants(fail_transfer=True)
    with pytest.raises(ShardingError, match=r"failed \(a replica is Dead\).*run the promotion again"):
        promote(index)
    assert "delete" not in fake.names()
    assert index.count_chunks("acme") == 5
    # Run again, it drops the dead shard key and copies anew.
    fake.fail_transfer = False
    fake.calls.clear()
    assert promote(index).points == 5
    assert fake.names()[: fake.names().index("create_shard_key")].count("delete_shard_key") == 1


def test_promoting_a_promoted_tenant_again_changes_nothing() -> None:
    fake, index = cluster_with_two_tenants()
    promote(index)
    fake.calls.clear()
    promotion = promote(index)
    assert not promotion.started and promotion.points == 5
    assert not {"create_shard_key", "delete_shard_key", "cluster_collection_update"} & set(fake.names())
