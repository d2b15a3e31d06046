"""The Edge store answers as local mode does, and keeps a store's rules: one process, no half-made state."""

import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import qdrant_edge as edge
from qdrant_client import models as qm

from ragserve.errors import StoreFormatError, StoreLockedError
from ragserve.ingest.edge_convert import edge_filter
from ragserve.ingest.edge_store import EdgeClient
from ragserve.ingest.embedding import DenseEmbedder
from ragserve.ingest.extract import extract_text
from ragserve.ingest.fusion import DEFAULT_RRF_K, rrf_scores
from ragserve.ingest.index import QdrantIndex, SearchMode
from ragserve.ingest.runtime import IngestRuntime
from ragserve.ingest.search import Hit
from ragserve.ingest.sources import scan_folder
from ragserve.settings import Settings
from tests.support.documents import make_corpus, write

TENANTS = {"acme": 7, "globex": 8}  # tenant -> corpus seed: two tenants with look-alike documents

_VECTORS = {"dense": qm.VectorParams(size=4, distance=qm.Distance.COSINE)}


@pytest.fixture(scope="module")
def both(
    tmp_path_factory: pytest.TempPathFactory, embedder: DenseEmbedder
) -> Iterator[dict[str, IngestRuntime]]:
    """The same chunks, vectors and tenants written into an Edge store and a local-mode store."""
    root = tmp_path_factory.mktemp("stores")
    stores = {
        kind: IngestRuntime.open(Settings(data_dir=root / kind, embedded_store=kind), embedder)
        for kind in ("edge", "local")
    }
    first = stores["edge"]
    for rt in stores.values():
        rt.index.create(first.spec)
    for tenant, seed in TENANTS.items():
        docs = root / "docs" / tenant
        make_corpus(docs, 24, seed=seed)
        chunks, meta = [], {}
        for f in scan_folder(docs, 1 << 20).files:
            doc_chunks = first.chunker.chunk(f.doc_id, extract_text(f.format, f.path.read_bytes()), f.format)
            chunks += doc_chunks
            meta[f.doc_id] = (f.sha256, len(doc_chunks))
        dense = embedder.embed_documents([c.embed_text for c in chunks]).tolist()
        sparse = [first.sparse.encode_document(c.embed_text) for c in chunks]
        for rt in stores.values():
            rt.index.upsert(tenant, chunks, dense, sparse, meta)
    yield stores
    for rt in stores.values():
        rt.close()


def _queries(both: dict[str, IngestRuntime]) -> list[str]:
    """Five words of acme's own text at a time, so that every query matches both ways."""
    words = [
        str((p.payload or {})["text"]) for p in _all_points(both["edge"].index, "acme", with_payload=True)
    ]
    vocabulary = sorted(set(" ".join(words).split()))
    rng = random.Random(5)
    return [" ".join(rng.sample(vocabulary, 5)) for _ in range(12)]


def _assert_same_ranking(got: list[Hit], want: list[Hit], query: str) -> None:
    """Same scores in the same order, and the same ids at each place. Points with equal scores come in no
    set order (Qdrant sorts them unstably; local mode keeps insertion order), so each run of equal scores is
    compared as a set, and the last run, which the limit may cut through, by its length alone."""
    assert [h.score for h in got] == pytest.approx([h.score for h in want], rel=1e-5), query
    runs: dict[float, tuple[set[str], set[str]]] = {}
    for mine, theirs in zip(got, want, strict=True):
        ids = runs.setdefault(round(mine.score, 5), (set(), set()))
        ids[0].add(mine.chunk_id)
        ids[1].add(theirs.chunk_id)
    for mine_ids, their_ids in list(runs.values())[:-1]:
        assert mine_ids == their_ids, query


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_edge_returns_the_hits_local_mode_returns(both: dict[str, IngestRuntime], mode: SearchMode) -> None:
    edge_search, local_search = both["edge"].retriever(), both["local"].retriever()
    acme_ids = {str(p.id) for p in _all_points(both["edge"].index, "acme")}
    for query in _queries(both):
        got = edge_search.search("acme", query, k=8, mode=mode)
        assert len(got) == 8, query
        _assert_same_ranking(got, local_search.search("acme", query, k=8, mode=mode), query)
        assert {h.chunk_id for h in got} <= acme_ids  # the tenant filter held at every stage


def test_our_rrf_scores_equal_edges_own_fusion(both: dict[str, IngestRuntime]) -> None:
    """Edge carries Qdrant's rrf_scoring; ours must give every candidate the same score."""
    rt = both["edge"]
    client = rt.index.client
    assert isinstance(client, EdgeClient)
    shard = client._shard(rt.index.collection)
    query = "reference code for document 11 charging"
    flt = edge.Filter(must=[edge.FieldCondition(key="tenant", match=edge.MatchValue("acme"))])
    stages = [
        edge.Prefetch(
            limit=20, query=edge.Query.Nearest(rt.embedder.embed_query(query), "dense"), filter=flt
        ),
        edge.Prefetch(limit=20, query=edge.Query.Nearest(_sparse(rt, query), "bm25"), filter=flt),
    ]
    rrf: Any = edge.Fusion.Rrf(k=DEFAULT_RRF_K)  # the stub types Fusion.Rrf apart from Fusion
    native = shard.query(edge.QueryRequest(limit=40, prefetches=stages, query=rrf))
    lists = shard.query_batch(
        edge.QueryBatchRequest([edge.QueryRequest(limit=20, query=s.query, filter=flt) for s in stages])
    )
    ours = dict(rrf_scores([[str(p.id) for p in points] for points in lists]))
    assert {str(p.id): p.score for p in native} == pytest.approx(ours, rel=1e-6)


def _sparse(rt: IngestRuntime, text: str) -> edge.SparseVector:
    encoded = rt.sparse.encode_query(text)
    return edge.SparseVector(indices=encoded.indices, values=encoded.values)


def _all_points(index: QdrantIndex, tenant: str, with_payload: bool = False) -> list[qm.Record]:
    flt = qm.Filter(must=[qm.FieldCondition(key="tenant", match=qm.MatchValue(value=tenant))])
    points, _ = index.client.scroll(
        index.collection, scroll_filter=flt, limit=100_000, with_payload=with_payload
    )
    return points


def test_rrf_follows_qdrants_formula_and_keeps_ties_in_first_seen_order() -> None:
    # Qdrant's own test case (reciprocal_rank_fusion.rs, test_rrf_scoring): k=2, three rankings.
    fused = rrf_scores([[2, 1], [1, 2, 3], [5, 3, 1]])
    assert [key for key, _ in fused] == [1, 2, 3, 5]
    assert [score for _, score in fused] == pytest.approx([1.0833334, 0.8333334, 0.5833334, 0.5])
    assert [key for key, _ in rrf_scores([["a"], ["b"]])] == ["a", "b"]


def test_a_prefetch_filter_and_the_query_filter_become_one_flat_filter() -> None:
    # Edge scans a nested filter instead of using the payload index: twice the dense search time at 100k.
    tenant = qm.Filter(must=[qm.FieldCondition(key="tenant", match=qm.MatchValue(value="acme"))])
    source = qm.FieldCondition(key="source", match=qm.MatchAny(any=["a.md"]))
    assert repr(edge_filter(tenant, tenant)) == repr(edge_filter(tenant))
    both = edge_filter(tenant, qm.Filter(must=[source]))
    assert both is not None and both.must is not None
    assert [c.key for c in both.must] == ["tenant", "source"]  # type: ignore[union-attr]


def test_a_second_open_of_the_store_is_refused_until_the_first_closes(settings: Settings) -> None:
    first = QdrantIndex.connect(settings)
    with pytest.raises(StoreLockedError, match="is open in another process"):
        QdrantIndex.connect(settings)
    first.close()
    QdrantIndex.connect(settings).close()


@pytest.mark.parametrize(
    "left",
    [
        "half-made",  # a kill between a shard's creation and the catalog's write
        "kept.0badf00d",  # a compaction killed before the catalog named its new shard
    ],
)
def test_a_collection_folder_the_catalog_does_not_name_is_removed_on_open(tmp_path: Path, left: str) -> None:
    client = EdgeClient(tmp_path)
    client.create_collection("kept", _VECTORS)
    client.close()
    half = edge.EdgeConfig(vectors={"dense": edge.EdgeVectorParams(size=4, distance=edge.Distance.Cosine)})
    edge.EdgeShard.create(str(tmp_path / "collections" / left), half).close()
    client = EdgeClient(tmp_path)
    assert [c.name for c in client.get_collections().collections] == ["kept"]
    assert sorted(p.name for p in (tmp_path / "collections").iterdir()) == ["kept"]
    client.close()


def test_compaction_leaves_no_byte_of_deleted_points_and_keeps_the_rest(tmp_path: Path) -> None:
    client = EdgeClient(tmp_path)
    client.create_collection("c", _VECTORS, {"bm25": qm.SparseVectorParams(modifier=qm.Modifier.IDF)})
    client.create_payload_index("c", "tenant", qm.KeywordIndexParams(type=qm.KeywordIndexType.KEYWORD))
    points = [
        qm.PointStruct(
            id=i,
            vector={"dense": [1.0, float(i), 0.0, 1.0], "bm25": qm.SparseVector(indices=[i], values=[1.0])},
            payload={"tenant": tenant, "text": f"{tenant} secret {i}"},
        )
        for i, tenant in enumerate(["gone-tenant", "kept-tenant"] * 50)
    ]
    client.upsert("c", points)
    gone = qm.Filter(must=[qm.FieldCondition(key="tenant", match=qm.MatchValue(value="gone-tenant"))])
    kept = qm.Filter(must=[qm.FieldCondition(key="tenant", match=qm.MatchValue(value="kept-tenant"))])

    def query() -> list[qm.ScoredPoint]:
        return client.query_points("c", [1.0, 3.0, 0.0, 1.0], "dense", query_filter=kept, limit=5).points

    before = query()
    client.delete("c", qm.FilterSelector(filter=gone))
    assert _files_holding(tmp_path, b"gone-tenant"), "a delete alone leaves the bytes: the test sees them"

    assert client.compact("c") == 50
    assert _files_holding(tmp_path, b"gone-tenant") == []
    after = query()
    assert [(p.id, round(p.score, 5), p.payload) for p in after] == [
        (p.id, round(p.score, 5), p.payload) for p in before
    ]
    client.close()
    reopened = EdgeClient(tmp_path)  # the catalog names the new folder; the old one is gone
    assert reopened.count("c").count == 50
    assert reopened.facet("c", "tenant", exact=True).hits[0].value == "kept-tenant"
    assert len(list((tmp_path / "collections").iterdir())) == 1
    reopened.close()


def test_writes_and_searches_during_a_compaction_are_kept_and_answered(tmp_path: Path) -> None:
    client = EdgeClient(tmp_path)
    client.create_collection("c", _VECTORS)

    def point(i: int, text: str) -> qm.PointStruct:
        return qm.PointStruct(id=i, vector={"dense": [1.0, float(i % 7), 0.5, 1.0]}, payload={"t": text})

    client.upsert("c", [point(i, "first") for i in range(20_000)])
    expected = {i: "first" for i in range(20_000)}
    done = threading.Event()
    searches = 0

    def compact() -> None:
        client.compact("c")
        done.set()

    worker = threading.Thread(target=compact)
    worker.start()
    i = 0
    while not done.is_set():  # ids at both ends of the copy's order: behind it, and ahead of it
        for changed in (i, 19_999 - i):
            client.upsert("c", [point(changed, "second")])
            expected[changed] = "second"
        client.delete("c", qm.PointIdsList(points=[10_000 + i]))
        expected.pop(10_000 + i, None)
        client.upsert("c", [point(30_000 + i, "new")])
        expected[30_000 + i] = "new"
        assert client.query_points("c", [1.0, 2.0, 0.5, 1.0], "dense", limit=3).points
        searches += 1
        i += 1
    worker.join()
    assert searches > 1, "the compaction was over before a write could race it"
    held: dict[int, str] = {}
    offset: Any = None
    while True:
        records, offset = client.scroll("c", limit=5_000, offset=offset)
        held.update({int(r.id): str((r.payload or {})["t"]) for r in records})
        if offset is None:
            break
    assert held == expected
    client.close()


def _files_holding(root: Path, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_an_alias_switch_is_one_catalog_write(tmp_path: Path) -> None:
    client = EdgeClient(tmp_path)
    client.create_collection("old", _VECTORS)
    client.create_collection("new", _VECTORS)
    create = qm.CreateAlias(collection_name="old", alias_name="live")
    client.update_collection_aliases(change_aliases_operations=[qm.CreateAliasOperation(create_alias=create)])
    with pytest.raises(ValueError, match="Collection missing not found"):
        client.update_collection_aliases(
            change_aliases_operations=[
                qm.DeleteAliasOperation(delete_alias=qm.DeleteAlias(alias_name="live")),
                qm.CreateAliasOperation(
                    create_alias=qm.CreateAlias(collection_name="missing", alias_name="live")
                ),
            ]
        )
    # The refused batch changed nothing, on disk or in memory.
    assert json.loads((tmp_path / "catalog.json").read_text())["aliases"] == {"live": "old"}
    assert [(a.alias_name, a.collection_name) for a in client.get_aliases().aliases] == [("live", "old")]
    client.close()


def test_a_local_mode_index_is_refused_with_what_to_run(
    settings: Settings, embedder: DenseEmbedder, docs: Path
) -> None:
    write(docs, "a.md", "Alpha.")
    local = settings.model_copy(update={"embedded_store": "local"})
    with IngestRuntime.open(local, embedder) as rt:
        rt.reindexer().run(docs, "acme")
    with pytest.raises(StoreFormatError, match="RAGSERVE_EMBEDDED_STORE=local to keep using it"):
        IngestRuntime.open(settings, embedder)
    with IngestRuntime.open(local, embedder) as rt:  # still there, and still served by local mode
        assert rt.retriever().search("acme", "alpha")[0].source == "a.md"
