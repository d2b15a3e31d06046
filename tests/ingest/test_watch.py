import threading
import time
from pathlib import Path

from ragserve.errors import RagserveError
from ragserve.ingest.reindex import ReindexReport
from ragserve.ingest.runtime import IngestRuntime
from ragserve.ingest.watch import watch_folder
from tests.ingest.indexed import sources
from tests.support.documents import write


def test_watch_reindexes_when_a_file_changes(runtime: IngestRuntime, docs: Path) -> None:
    write(docs, "a.md", "Alpha.")
    reindexer = runtime.reindexer()
    reindexer.run(docs, "acme")
    reports: list[ReindexReport] = []
    errors: list[RagserveError] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=watch_folder,
        args=(reindexer, docs, "acme", reports.append, errors.append, stop),
        kwargs={"debounce_ms": 100},
        daemon=True,
    )
    thread.start()
    try:
        # Written again until a report comes: a change made before the watcher has started is not seen.
        deadline = time.monotonic() + 20
        while not reports and time.monotonic() < deadline:
            write(docs, "b.md", "Beta, added while watching.")
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(10)
    assert not errors
    assert reports
    assert (reports[0].added, reports[0].unchanged) == (1, 1)
    assert sources(runtime.index, "acme") == {"a.md": 1, "b.md": 1}
