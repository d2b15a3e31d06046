"""A model or chunking change builds a new collection beside the live one; the alias moves when it is done."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ragserve.ingest.blue_green import Collections
from ragserve.ingest.embedding import DenseEmbedder
from ragserve.ingest.index import QdrantIndex
from ragserve.ingest.runtime import IngestRuntime
from ragserve.ingest.search import Hit
from ragserve.settings import Settings
from tests.ingest.indexed import point_set, sources
from tests.support.documents import write

ROBOTS = "\n\n".join(
    f"Paragraph {i} explains how the warehouse robot charges its battery. " * 3 for i in range(40)
)
QUERY = "how does the robot charge its battery?"


@contextmanager
def opened(settings: Settings, embedder: DenseEmbedder, **changes: Any) -> Iterator[IngestRuntime]:
    """The runtime one process would build from these settings (the session's model, not a second load)."""
    with IngestRuntime.open(settings.model_copy(update=changes), embedder) as rt:
        yield rt


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    acme, globex = tmp_path / "acme", tmp_path / "globex"
    for name in ("charging.md", "docking.md", "batteries.md"):
        write(acme, name, f"# {name}\n\n{ROBOTS}")
    write(globex, "refunds.md", "# Refunds\n\nGlobex refunds a damaged bag within 14 days.")
    return {"acme": acme, "globex": globex}


def aliases(index: QdrantIndex) -> dict[str, str]:
    return {a.alias_name: a.collection_name for a in index.client.get_aliases().aliases}


def collection_names(index: QdrantIndex) -> set[str]:
    return {c.name for c in index.client.get_collections().collections}


def texts(index: QdrantIndex, tenant: str) -> set[str]:
    return {p["text"] for p in point_set(index, tenant).values()}


def hit_texts(hits: list[Hit]) -> set[str]:
    assert hits
    return {h.text for h in hits}


def index_both(rt: IngestRuntime, folders: dict[str, Path]) -> None:
    for tenant, folder in folders.items():
        rt.reindexer().run(folder, tenant)


def test_the_first_index_creates_a_collection_behind_the_alias(runtime: IngestRuntime, docs: Path) -> None:
    write(docs, "a.md", "Alpha.")
    report = runtime.reindexer().run(docs, "acme")
    physical = Collections(runtime.index).physical_name(runtime.spec)
    assert report.index == "updated"
    assert aliases(runtime.index) == {"ragserve": physical}
    assert collection_names(runtime.index) == {physical}
    assert runtime.retriever().search("acme", "alpha")[0].source == "a.md"


def test_unchanged_settings_update_the_live_collection_in_place(runtime: IngestRuntime, docs: Path) -> None:
    write(docs, "a.md", "Alpha.")
    runtime.reindexer().run(docs, "acme")
    before = aliases(runtime.index)
    write(docs, "b.md", "Beta.")
    report = runtime.reindexer().run(docs, "acme")
    assert (report.index, report.added, report.unchanged) == ("updated", 1, 1)
    assert aliases(runtime.index) == before
    assert collection_names(runtime.index) == set(before.values())


def test_a_chunking_change_goes_live_only_once_every_tenant_is_rebuilt(
    settings: Settings, embedder: DenseEmbedder, folders: dict[str, Path]
) -> None:
    with opened(settings, embedder) as rt:
        index_both(rt, folders)
        old = aliases(rt.index)["ragserve"]
        old_points = point_set(rt.index, "acme")
    with opened(settings, embedder, chunk_tokens=100) as rt:
        new = Collections(rt.index).physical_name(rt.spec)
        report = rt.reindexer().run(folders["acme"], "acme")
        assert (report.index, report.waiting_for, report.added) == ("building", ["globex"], 3)
        # The old collection still serves, untouched; the new one waits beside it.
        assert aliases(rt.index) == {"ragserve": old}
        assert collection_names(rt.index) == {old, new}
        assert point_set(rt.index, "acme") == old_points
        old_texts = {p["text"] for p in old_points.values()}
        assert hit_texts(rt.retriever().search("acme", QUERY)) <= old_texts

        report = rt.reindexer().run(folders["globex"], "globex")
        assert (report.index, report.waiting_for) == ("switched", [])
        assert aliases(rt.index) == {"ragserve": new}
        assert collection_names(rt.index) == {new}
        assert hit_texts(rt.retriever().search("acme", QUERY)) <= texts(rt.index, "acme")
        assert texts(rt.index, "acme").isdisjoint(old_texts)
        assert rt.retriever().search("globex", "refund damaged bag")[0].source == "refunds.md"


def test_the_tenants_a_caller_names_decide_when_a_rebuild_goes_live(
    settings: Settings, embedder: DenseEmbedder, folders: dict[str, Path], docs: Path
) -> None:
    write(docs, "old.md", "A tenant that is no longer configured.")
    with opened(settings, embedder) as rt:
        index_both(rt, folders)
        rt.reindexer().run(docs, "retired")
    configured = set(folders)  # what `ragserve up` passes: its config's tenants
    with opened(settings, embedder, chunk_tokens=100) as rt:
        first = rt.reindexer().run(folders["acme"], "acme", tenants=configured)
        second = rt.reindexer().run(folders["globex"], "globex", tenants=configured)
        assert (first.index, first.waiting_for, second.index) == ("building", ["globex"], "switched")
        assert sources(rt.index, "retired") == {}
        assert set(sources(rt.index, "acme")) == {"charging.md", "docking.md", "batteries.md"}


def test_a_store_from_before_aliases_stays_live_until_the_first_rebuild(
    settings: Settings, embedder: DenseEmbedder, folders: dict[str, Path]
) -> None:
    with opened(settings, embedder) as rt:
        rt.index.create(rt.spec)  # what older versions made: a plain collection under the served name
        index_both(rt, folders)
        assert aliases(rt.index) == {}
        assert collection_names(rt.index) == {"ragserve"}
        old_texts = texts(rt.index, "acme")
    with opened(settings, embedder, chunk_tokens=100) as rt:
        assert rt.reindexer().run(folders["acme"], "acme").index == "building"
        assert aliases(rt.index) == {}
        assert texts(rt.index, "acme") == old_texts
        assert hit_texts(rt.retriever().search("acme", QUERY)) <= old_texts
        assert rt.reindexer().run(folders["globex"], "globex").index == "switched"
        new = Collections(rt.index).physical_name(rt.spec)
        assert aliases(rt.index) == {"ragserve": new}
        assert collection_names(rt.index) == {new}
        assert hit_texts(rt.retriever().search("acme", QUERY)) <= texts(rt.index, "acme")


def test_a_failed_build_leaves_the_old_index_live_and_the_next_run_finishes_it(
    settings: Settings, embedder: DenseEmbedder, folders: dict[str, Path], tmp_path: Path
) -> None:
    with opened(settings, embedder) as rt:
        index_both(rt, folders)
        before = aliases(rt.index)
        old_points = point_set(rt.index, "acme")

    def fail_midway(done: int, _total: int) -> None:
        if done == 2:
            raise RuntimeError("killed")

    with opened(settings, embedder, chunk_tokens=100, embed_batch_size=1) as rt:
        rt.reindexer().run(folders["globex"], "globex")
        with pytest.raises(RuntimeError, match="killed"):
            rt.reindexer().run(folders["acme"], "acme", fail_midway)
        # globex is built, acme is not: the alias stays on the old, complete collection.
        assert aliases(rt.index) == before
        assert point_set(rt.index, "acme") == old_points
        assert rt.reindexer().run(folders["acme"], "acme").index == "switched"
        finished = point_set(rt.index, "acme")
    with opened(Settings(data_dir=tmp_path / "clean"), embedder, chunk_tokens=100) as clean:
        clean.reindexer().run(folders["acme"], "acme")
        assert finished == point_set(clean.index, "acme")


def test_a_build_with_other_settings_replaces_an_abandoned_one(
    settings: Settings, embedder: DenseEmbedder, folders: dict[str, Path]
) -> None:
    with opened(settings, embedder) as rt:
        index_both(rt, folders)
        live = aliases(rt.index)["ragserve"]
    with opened(settings, embedder, chunk_tokens=100) as rt:
        rt.reindexer().run(folders["acme"], "acme")
        abandoned = Collections(rt.index).physical_name(rt.spec)
    with opened(settings, embedder, chunk_tokens=120) as rt:
        rt.reindexer().run(folders["acme"], "acme")
        building = Collections(rt.index).physical_name(rt.spec)
        assert collection_names(rt.index) == {live, building}
        assert abandoned not in collection_names(rt.index)
        assert aliases(rt.index) == {"ragserve": live}


def test_queries_answer_from_the_old_index_until_the_switch_and_from_the_new_one_after(
    settings: Settings, embedder: DenseEmbedder, folders: dict[str, Path]
) -> None:
    with opened(settings, embedder) as rt:
        index_both(rt, folders)
        old_texts = texts(rt.index, "acme")
    # One runtime, as in the serving process: the retriever and the admin re-index share it.
    with opened(settings, embedder, chunk_tokens=100, embed_batch_size=1) as rt:
        retriever = rt.retriever()
        answers: list[set[str]] = []
        errors: list[Exception] = []
        stop = threading.Event()

        def keep_asking() -> None:
            while not stop.is_set():
                try:
                    answers.append(hit_texts(retriever.search("acme", QUERY, k=3)))
                except Exception as exc:
                    errors.append(exc)

        midway, go_on = threading.Event(), threading.Event()

        def hold(done: int, _total: int) -> None:
            if done == 2:
                midway.set()
                go_on.wait(60)

        asker = threading.Thread(target=keep_asking)
        asker.start()
        build = threading.Thread(target=rt.reindexer().run, args=(folders["acme"], "acme", hold))
        build.start()
        assert midway.wait(60)
        new_index = rt.index.view(Collections(rt.index).physical_name(rt.spec))
        deadline = time.monotonic() + 30
        while new_index.count_chunks("acme") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert new_index.count_chunks("acme") > 0  # the build is under way
        assert hit_texts(retriever.search("acme", QUERY)) <= old_texts
        go_on.set()
        build.join(120)
        assert hit_texts(retriever.search("acme", QUERY)) <= old_texts  # globex is not rebuilt yet
        assert rt.reindexer().run(folders["globex"], "globex").index == "switched"
        new_texts = texts(rt.index, "acme")
        assert hit_texts(retriever.search("acme", QUERY)) <= new_texts
        time.sleep(0.2)
        stop.set()
        asker.join(60)
    assert errors == []
    assert all(answer <= old_texts or answer <= new_texts for answer in answers)
    assert answers[-1] <= new_texts


def test_search_embeds_queries_with_the_model_the_live_index_was_built_with(
    settings: Settings, embedder: DenseEmbedder, docs: Path
) -> None:
    write(docs, "a.md", "# Warranty\n\nAcme robots carry a 3-year warranty.")
    with opened(settings, embedder) as rt:
        rt.reindexer().run(docs, "acme")
    # Settings that name a model this machine does not have: queries still go to the old index, whose
    # model (read from its metadata) is loaded; the settings' model is never needed to answer.
    with IngestRuntime.open(settings.model_copy(update={"embedding_model": "no-such-model"})) as rt:
        [top] = rt.retriever().search("acme", "how long is the warranty?", k=1)
        assert top.source == "a.md"
