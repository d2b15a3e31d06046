"""`reindex --watch`: re-run the incremental re-index whenever files in the docs folder change."""

import threading
from collections.abc import Callable
from pathlib import Path

from watchfiles import watch

from ragserve.errors import RagserveError
from ragserve.ingest.reindex import Reindexer, ReindexReport

__all__ = ["watch_folder"]


def watch_folder(
    reindexer: Reindexer,
    docs_dir: Path,
    tenant: str,
    on_report: Callable[[ReindexReport], None],
    on_error: Callable[[RagserveError], None],
    stop: threading.Event | None = None,
    debounce_ms: int = 500,
) -> None:
    """Blocks until stop is set (or Ctrl-C); each burst of changes costs one hash-checked re-index."""
    for _changes in watch(docs_dir, stop_event=stop, debounce=debounce_ms, raise_interrupt=False):
        try:
            on_report(reindexer.run(docs_dir, tenant))
        except RagserveError as exc:
            on_error(exc)
