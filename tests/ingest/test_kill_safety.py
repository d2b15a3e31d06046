"""SIGKILL a real `ragserve reindex` process mid-run, twice, then finish: the result equals a clean run's."""

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import qdrant_edge as edge

from ragserve.ingest.blue_green import physical_name
from ragserve.ingest.embedding import DenseEmbedder
from ragserve.ingest.runtime import IngestRuntime
from ragserve.settings import Settings
from tests.ingest.indexed import point_set
from tests.support.documents import make_corpus

N_FILES = 90


def _reindex_process(docs: Path, data_dir: Path, **settings: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RAGSERVE_DATA_DIR": str(data_dir), "RAGSERVE_EMBED_BATCH_SIZE": "8", **settings}
    cmd = [sys.executable, "-m", "ragserve.cli.main", "reindex", str(docs), "--tenant", "acme", "--json"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _store_of(settings: Settings, embedder: DenseEmbedder) -> Path:
    """The Edge shard of the collection these settings write to: `<alias>__<fingerprint>`."""
    with IngestRuntime.open(
        settings.model_copy(update={"data_dir": settings.data_dir.parent / "probe"}), embedder
    ) as rt:
        name = physical_name(settings.collection, rt.spec)
    return settings.edge_path / "collections" / name


def _stored_points(shard: Path) -> int:
    """What a kill now would leave: a copy of the shard's folder, opened (its WAL replayed), counted. The
    writer holds the store's lock and the shard's WAL lock, which guard the originals, not a copy."""
    if not shard.exists():
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / shard.name
        try:
            shutil.copytree(shard, copy, copy_function=_copy_sparse)
            opened = edge.EdgeShard.load(str(copy))
        except Exception:  # copied mid-write or mid-flush: the next poll tries again
            return 0
        try:
            return opened.count(edge.CountRequest(exact=True))
        finally:
            opened.close()


def _copy_sparse(src: str, dst: str) -> None:
    """The WAL's files are mostly zeros; copies them without writing those."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data.rstrip(b"\0"))
    os.truncate(dst, len(data))


def _kill_once_writing(proc: subprocess.Popen[bytes], store: Path, rng: random.Random) -> None:
    """Waits until the process writes new points, then kills it at a random moment of the write loop."""
    deadline = time.monotonic() + 120
    before = _stored_points(store)
    while time.monotonic() < deadline and proc.poll() is None and _stored_points(store) <= before:
        time.sleep(0.02)
    time.sleep(rng.uniform(0.05, 0.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def _snapshot(settings: Settings, embedder: DenseEmbedder, docs: Path | None) -> dict[str, dict[str, Any]]:
    with IngestRuntime.open(settings, embedder) as rt:
        if docs is not None:
            rt.reindexer().run(docs, "acme")
        return point_set(rt.index, "acme")


@pytest.mark.slow
def test_reindex_after_kill_leaves_exactly_the_points_of_a_clean_run(
    tmp_path: Path, embedder: DenseEmbedder
) -> None:
    docs = tmp_path / "docs"
    make_corpus(docs, N_FILES)
    killed_dir = tmp_path / "killed"
    store = _store_of(Settings(data_dir=killed_dir), embedder)
    rng = random.Random(1234)

    # Kill a first run, then change and delete documents and kill the run that repairs it.
    for round_ in range(2):
        proc = _reindex_process(docs, killed_dir)
        _kill_once_writing(proc, store, rng)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
        partial = _snapshot(Settings(data_dir=killed_dir), embedder, None)
        assert 0 < len({p["source"] for p in partial.values()}) < N_FILES
        if round_ == 0:
            files = sorted(p for p in docs.rglob("*") if p.is_file())
            for path in files[:10]:
                path.write_text(path.read_text() + "\n\nAn added closing paragraph.", encoding="utf-8")
            for path in files[-5:]:
                path.unlink()

    finished = _snapshot(Settings(data_dir=killed_dir), embedder, docs)
    clean = _snapshot(Settings(data_dir=tmp_path / "clean"), embedder, docs)
    assert finished == clean
    assert len({p["source"] for p in clean.values()}) == N_FILES - 5


@pytest.mark.slow
def test_a_rebuild_killed_midway_leaves_the_old_index_live_and_the_next_run_switches(
    tmp_path: Path, embedder: DenseEmbedder
) -> None:
    docs = tmp_path / "docs"
    make_corpus(docs, N_FILES)
    live = Settings(data_dir=tmp_path / "data")
    rebuilt = live.model_copy(update={"chunk_tokens": 100})
    old = _snapshot(live, embedder, docs)
    build_store = _store_of(rebuilt, embedder)

    proc = _reindex_process(docs, live.data_dir, RAGSERVE_CHUNK_TOKENS="100")
    _kill_once_writing(proc, build_store, random.Random(99))
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    with IngestRuntime.open(live, embedder) as rt:
        # The alias still points at the old, complete collection; the half build waits beside it.
        assert point_set(rt.index, "acme") == old
        build = rt.index.view(build_store.name)
        assert build.count_chunks("acme") > 0
        assert rt.retriever().search("acme", "warranty")

    finished = _snapshot(rebuilt, embedder, docs)
    clean = _snapshot(Settings(data_dir=tmp_path / "clean", chunk_tokens=100), embedder, docs)
    assert finished == clean
    assert finished != old
    with IngestRuntime.open(live, embedder) as rt:
        assert [c.name for c in rt.index.client.get_collections().collections] == [build_store.name]
