"""Uploaded documents' indexing killed mid-run (SIGKILL, a real process) and run again: nothing duplicated,
orphaned or missing, every live document completed, a document being deleted gone from index and disk."""

import hashlib
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ragserve.ingest.embedding import DenseEmbedder
from ragserve.ingest.runtime import IngestRuntime
from ragserve.service.library import DocumentLibrary
from ragserve.settings import Settings
from ragserve.state.database import Database
from ragserve.state.documents import DocumentStore
from ragserve.state.tenants import TenantStore
from tests.ingest.indexed import sources
from tests.ingest.test_kill_safety import _kill_once_writing, _store_of
from tests.support.documents import make_corpus

_RUN = """
import sys
from pathlib import Path
from ragserve.ingest.runtime import IngestRuntime
from ragserve.service.library import DocumentLibrary
from ragserve.settings import Settings
from ragserve.state.database import Database
from ragserve.state.documents import DocumentStore
settings = Settings()
with IngestRuntime.open(settings) as runtime:
    DocumentLibrary(DocumentStore(Database.of(settings)), runtime, settings.documents_dir).run("acme")
"""


def _upload(library: DocumentLibrary, path: Path) -> str:
    data = path.read_bytes()
    fmt = {".md": "markdown", ".html": "html", ".txt": "text"}[path.suffix]
    document, _ = library._store("acme", path.name, fmt, hashlib.sha256(data).hexdigest(), data, "assistants")
    return document.id


@pytest.mark.slow
def test_indexing_killed_mid_run_is_completed_by_the_next_with_nothing_duplicated_or_orphaned(
    settings: Settings, embedder: DenseEmbedder, tmp_path: Path
) -> None:
    database = Database.of(settings)
    TenantStore(database).create("acme", {}, None, "api")
    store = DocumentStore(database)
    corpus = make_corpus(tmp_path / "corpus", 60)
    with IngestRuntime.open(settings, embedder) as runtime:
        library = DocumentLibrary(store, runtime, settings.documents_dir)
        first = [_upload(library, path) for path in corpus[:5]]
        library.run("acme")
        store.mark_deleting("acme", first[0])
        later = [_upload(library, path) for path in corpus[5:]]
    env = {**os.environ, "RAGSERVE_DATA_DIR": str(settings.data_dir), "RAGSERVE_EMBED_BATCH_SIZE": "8"}
    proc = subprocess.Popen([sys.executable, "-c", _RUN], env=env, stderr=subprocess.PIPE)
    _kill_once_writing(proc, _store_of(settings, embedder), random.Random(3))
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""  # killed mid-run

    with IngestRuntime.open(settings, embedder) as runtime:
        library = DocumentLibrary(store, runtime, settings.documents_dir)
        library.run("acme")
        indexed = sources(runtime.index, "acme")
        states = runtime.index.document_states("acme")
        live = store.all("acme", deleting=True)
        assert {d.id for d in live} == set(first[1:] + later)  # the deleting one is gone, row and all
        assert {d.status for d in live} == {"completed"}
        assert set(indexed) == {library.source_of(d) for d in live}
        assert all(states[s].complete and indexed[s] == states[s].max_index + 1 for s in indexed)
        assert sum(d.chunks for d in live) == runtime.index.count_chunks("acme")
        on_disk = {p.parent.name for p in settings.documents_dir.joinpath("acme").rglob("*") if p.is_file()}
        assert on_disk == {d.id for d in live}
