"""Qdrant as a cluster: the requests the index builds, checked on a recording client and a fake cluster (no
Qdrant server can run here), and the embedded store's requests unchanged while custom sharding is off."""

from typing import Any

import pytest
from pydantic import ValidationError
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from ragserve.errors import ShardingError
from ragserve.ingest.blue_green import Collections
from ragserve.ingest.chunking import Chunk
from ragserve.ingest.index import IndexSpec, QdrantIndex
from ragserve.ingest.sharding import FALLBACK_SHARD_KEY, ClusterLayout
from ragserve.ingest.sparse import SparseEmbedding
from ragserve.settings import Settings
from tests.ingest.fake_cluster import Call, FakeCluster, RecordingClient

SPEC = IndexSpec("model-a", 4, {"tokens": 200}, {"k1": 1.2})
CLUSTER = ClusterLayout(
    shard_number=2, replication_factor=2, write_consistency_factor=1, custom_sharding=True
)
TENANT_READS_AND_WRITES = {"upsert", "count", "scroll", "query_points", "delete"}


def write_and_read(index: QdrantIndex, tenant: str, n: int = 3) -> None:
    """Every kind of request the index makes for a tenant: upsert, scroll, count, 3 queries, 2 deletes."""
    chunks = [Chunk("a.md", i, "Heading", f"text {i}") for i in range(n)]
    sparse = [SparseEmbedding([1, 2], [0.5, 0.5])] * n
    index.upsert(tenant, chunks, [[0.1, 0.2, 0.3, 0.4]] * n, sparse, {"a.md": ("hash", n)})
    index.document_states(tenant)
    index.count_chunks(tenant)
    for mode in ("hybrid", "dense", "bm25"):
        index.query(tenant, [0.1, 0.2, 0.3, 0.4], SparseEmbedding([1], [1.0]), 3, 10, mode=mode)
    index.delete_tail(tenant, "a.md", n - 1)
    index.delete_documents(tenant, ["gone.md"])


def tenants_of(call: Call) -> set[Any]:
    """The tenants a request writes, or the tenants its filter lets it read or delete."""
    if call.name == "upsert":
        return {p.payload["tenant"] for p in call.args[1]}
    filters = {
        "count": "count_filter",
        "scroll": "scroll_filter",
        "query_points": "query_filter",
    }
    flt = call.kwargs["points_selector"].filter if call.name == "delete" else call.kwargs[filters[call.name]]
    return {c.match.value for c in flt.must if c.key == "tenant"}


def live_index(fake: FakeCluster, layout: ClusterLayout = CLUSTER) -> QdrantIndex:
    """An index over the fake cluster, its first collection created as the first re-index creates it."""
    index = QdrantIndex(fake.as_client(), "ragserve", layout=layout)
    target = Collections(index).target(SPEC)
    return index.view(target.name)


def test_a_new_collection_gets_the_cluster_settings_and_a_one_shard_fallback_key() -> None:
    fake = FakeCluster()
    live_index(fake)
    [create] = [c for c in fake.calls if c.name == "create_collection"]
    assert create.kwargs["shard_number"] == 2
    assert create.kwargs["replication_factor"] == 2
    assert create.kwargs["write_consistency_factor"] == 1
    assert create.kwargs["sharding_method"] == qm.ShardingMethod.CUSTOM
    [key] = [c for c in fake.calls if c.name == "create_shard_key"]
    # Qdrant's fallback shard key may hold a single shard; it is replicated like the rest.
    assert key.args[1] == FALLBACK_SHARD_KEY
    assert key.kwargs == {"shards_number": 1, "replication_factor": 2}
    # The shard keys come before the payload indexes, and before anything is written.
    names = fake.names()
    assert names.index("create_shard_key") < names.index("create_payload_index")


def test_with_custom_sharding_every_request_names_the_tenants_shard_key_the_fallback_and_filter() -> None:
    fake = FakeCluster()
    index = live_index(fake)
    fake.calls.clear()
    write_and_read(index, "acme")
    calls = [c for c in fake.calls if c.name in TENANT_READS_AND_WRITES]
    assert {c.name for c in calls} == TENANT_READS_AND_WRITES
    for call in calls:
        assert call.kwargs["shard_key_selector"] == qm.ShardKeyWithFallback(
            target="acme", fallback=FALLBACK_SHARD_KEY
        ), call.name
        assert tenants_of(call) == {"acme"}, call.name  # the fallback holds other tenants too
    # Until acme is promoted, its points live in the shared shard.
    shared = fake.collections[index.collection].shards[FALLBACK_SHARD_KEY]
    assert len(shared) == 2 and set(shared) == fake.routed(index.collection, "acme", FALLBACK_SHARD_KEY)


def test_without_custom_sharding_the_embedded_store_gets_no_shard_key_nor_shard_key_calls() -> None:
    recorder = RecordingClient(QdrantClient(":memory:"))
    layout = ClusterLayout(shard_number=3, replication_factor=2, write_consistency_factor=2)
    index = QdrantIndex(recorder.as_client(), "ragserve", layout=layout)
    target = Collections(index).target(SPEC)
    view = index.view(target.name)
    write_and_read(view, "acme", n=3)
    assert view.count_chunks("acme") == 2  # the tail from index 2 on was deleted; the rest is there
    [create] = [c for c in recorder.calls if c.name == "create_collection"]
    assert (create.kwargs["shard_number"], create.kwargs["replication_factor"]) == (3, 2)
    assert "sharding_method" not in create.kwargs
    assert not any("shard_key_selector" in c.kwargs for c in recorder.calls)
    assert "create_shard_key" not in [c.name for c in recorder.calls]


def test_the_settings_build_the_layout() -> None:
    settings = Settings(
        qdrant_url="http://qdrant-1:6333",
        qdrant_shard_number=3,
        qdrant_replication_factor=2,
        qdrant_write_consistency_factor=2,
        qdrant_custom_sharding=True,
    )
    assert ClusterLayout.from_settings(settings) == ClusterLayout(3, 2, 2, custom_sharding=True)
    assert ClusterLayout.from_settings(Settings()) == ClusterLayout(1, 1, 1, custom_sharding=False)


def test_the_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGSERVE_QDRANT_URL", "http://qdrant-1:6333")
    monkeypatch.setenv("RAGSERVE_QDRANT_SHARD_NUMBER", "6")
    monkeypatch.setenv("RAGSERVE_QDRANT_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("RAGSERVE_QDRANT_WRITE_CONSISTENCY_FACTOR", "2")
    monkeypatch.setenv("RAGSERVE_QDRANT_CUSTOM_SHARDING", "true")
    assert ClusterLayout.from_settings(Settings()) == ClusterLayout(6, 3, 2, custom_sharding=True)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"qdrant_custom_sharding": True}, "needs a Qdrant server"),
        ({"qdrant_replication_factor": 2, "qdrant_write_consistency_factor": 3}, "cannot exceed"),
        ({"qdrant_shard_number": 0}, "greater than or equal to 1"),
        ({"qdrant_replication_factor": 0}, "greater than or equal to 1"),
    ],
)
def test_settings_that_cannot_work_are_refused(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Settings(**changes)


def test_a_rebuild_gets_the_cluster_settings_and_the_promoted_tenants_shard_keys() -> None:
    fake = FakeCluster()
    live = live_index(fake)
    fake.create_shard_key(live.collection, "acme", shards_number=2, replication_factor=2)  # acme promoted
    fake.calls.clear()
    index = QdrantIndex(fake.as_client(), "ragserve", layout=CLUSTER)
    new_spec = IndexSpec("model-b", 4, {"tokens": 200}, {"k1": 1.2})
    target = Collections(index).target(new_spec)
    assert target.building and target.name != live.collection
    [create] = [c for c in fake.calls if c.name == "create_collection"]
    assert create.args[0] == target.name
    assert create.kwargs["sharding_method"] == qm.ShardingMethod.CUSTOM
    assert create.kwargs["replication_factor"] == 2
    keys = [(c.args[1], c.kwargs) for c in fake.calls if c.name == "create_shard_key"]
    assert keys == [
        (FALLBACK_SHARD_KEY, {"shards_number": 1, "replication_factor": 2}),
        ("acme", {"shards_number": 2, "replication_factor": 2}),  # empty, so active at once
    ]
    # The rebuild's writes for acme land in its own shard of the new collection.
    write_and_read(index.view(target.name), "acme")
    shards = fake.collections[target.name].shards
    assert shards["acme"] and not shards[FALLBACK_SHARD_KEY]


@pytest.mark.parametrize("custom_setting", [True, False])
def test_a_collection_of_the_other_sharding_method_is_refused_with_the_reason(custom_setting: bool) -> None:
    fake = FakeCluster()
    live_index(fake, ClusterLayout(custom_sharding=not custom_setting))
    index = QdrantIndex(fake.as_client(), "ragserve", layout=ClusterLayout(custom_sharding=custom_setting))
    with pytest.raises(
        ShardingError, match=r"RAGSERVE_QDRANT_CUSTOM_SHARDING is (on|off).*new RAGSERVE_COLLECTION"
    ):
        Collections(index).target(SPEC)
