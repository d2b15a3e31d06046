"""The documents tenants upload over HTTP: stored, then indexed in the background with the guarantees of
`ragserve reindex`, because it is that re-index.

A tenant's uploads live in `<data dir>/documents/<tenant>/<document id>/<name>`, and that folder is indexed by
the same incremental run as a docs folder: unchanged bytes cost a hash check, a killed run is finished by the
next one, and nothing is indexed twice (point ids come from the document and chunk). The database is the
truth and the folder follows it: each run first removes any folder that no live document owns (an upload
that was deleted, or one killed half-way), then indexes, then records each document's outcome. A document's
row is written before its bytes, and removed only after its chunks, so a kill at any moment leaves a state
the next run completes. Runs are one at a time per tenant, in the background; uploads during a run are
picked up by one more run after it.
"""

import asyncio
import logging
import os
import re
import shutil
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from ragserve.files import sync_folder
from ragserve.ingest.runtime import IngestRuntime
from ragserve.ingest.sources import FORMATS
from ragserve.state.documents import DocumentRow, DocumentStore, Purpose

__all__ = ["DocumentLibrary", "safe_filename", "upload_folders"]

log = logging.getLogger("ragserve.ingest")

_RUNNERS = 2  # tenants indexed at once
_EXTENSION = {fmt: ext for ext, fmt in reversed(FORMATS.items())}  # each format's first extension
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")
MAX_NAME = 200


def upload_folders(root: Path) -> dict[str, Path]:
    """Each tenant with uploads, and the folder that holds them (`DocumentLibrary.folder`)."""
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")}


def safe_filename(name: str, fmt: str) -> str:
    """The client's file name made harmless: its last path part, without control or path characters, cut
    to length, never hidden, with the extension of the format its bytes are (the indexer reads by it)."""
    base = re.split(r"[/\\]", name)[-1]
    stem = _UNSAFE.sub("_", base).strip(" .") or "document"
    extension = _EXTENSION[fmt]
    if stem.lower().endswith(extension):
        stem = stem[: -len(extension)] or "document"
    return stem[: MAX_NAME - len(extension)] + extension


class DocumentLibrary:
    def __init__(self, store: DocumentStore, ingest: IngestRuntime, root: Path) -> None:
        self.store = store
        self.ingest = ingest
        self.root = root
        # Runs go to threads of their own at the lowest CPU priority: on the API's cores, chat's retrieval and
        # prompt work come first and indexing takes what is left (measured: docs/benchmarks.md).
        self._executor = ThreadPoolExecutor(_RUNNERS, "indexing", initializer=_lowest_priority)
        self._locks: dict[str, asyncio.Lock] = {}  # one run at a time per tenant
        self._file_locks: dict[str, threading.Lock] = {}  # a run's reconcile against an upload's write
        self._guard = threading.Lock()
        self._pending: set[str] = set()
        self._workers: dict[str, asyncio.Task[None]] = {}

    def folder(self, tenant: str) -> Path:
        return self.root / tenant  # what upload_folders lists

    def path_of(self, document: DocumentRow) -> Path:
        """Where the document's bytes are (once its upload has finished)."""
        return self.folder(document.tenant) / self.source_of(document)

    def source_of(self, document: DocumentRow) -> str:
        """The document's id in the index, and in citations: `<document id>/<name>` (a safe_filename)."""
        return f"{document.id}/{document.filename}"

    # -- what the routes call --

    async def add(
        self, tenant: str, filename: str, fmt: str, sha256: str, data: bytes, purpose: Purpose = "assistants"
    ) -> tuple[DocumentRow, bool]:
        """Stores the document and schedules its indexing; the existing one for bytes the tenant has.
        `filename`: a safe_filename."""
        document, created = await asyncio.to_thread(self._store, tenant, filename, fmt, sha256, data, purpose)
        self.schedule(tenant)
        return document, created

    def _store(
        self, tenant: str, filename: str, fmt: str, sha256: str, data: bytes, purpose: Purpose
    ) -> tuple[DocumentRow, bool]:
        with self._files(tenant):  # a run's look at rows and files sees an upload whole or not at all
            document, created = self.store.add(tenant, filename, fmt, sha256, len(data), purpose)
            if created or document.status == "failed":  # a failed one is tried again, its bytes written again
                self._write(document, data)
                if not created:
                    self.store.finish(tenant, document.id, "in_progress", None, 0)
                    document = self.store.get(tenant, document.id)
        return document, created

    async def delete(self, tenant: str, document_id: str, kind: str = "document") -> DocumentRow:
        """Marks it, then the background run removes its chunks, its bytes and its row, in that order.
        `kind`: what the caller calls it, for the not-found message."""
        document = await asyncio.to_thread(self.store.mark_deleting, tenant, document_id, kind)
        self.schedule(tenant)
        return document

    def schedule(self, tenant: str) -> None:
        self._pending.add(tenant)
        if tenant not in self._workers:
            task = asyncio.get_running_loop().create_task(self._work(tenant))
            self._workers[tenant] = task
            task.add_done_callback(lambda _: self._workers.pop(tenant, None))

    async def resume(self) -> None:
        """At start: every tenant with documents waiting (a restart mid-indexing) gets its run."""
        for tenant in await asyncio.to_thread(self.store.tenants_with_work):
            self.schedule(tenant)

    @asynccontextmanager
    async def holding(self, tenant: str) -> AsyncIterator[None]:
        """No run of the tenant's starts while held (erasure)."""
        async with self._lock(tenant):
            yield

    async def aclose(self) -> None:
        for task in list(self._workers.values()):
            task.cancel()
        await asyncio.gather(*self._workers.values(), return_exceptions=True)
        self._executor.shutdown(wait=True)

    # -- the background run --

    def _lock(self, tenant: str) -> asyncio.Lock:
        return self._locks.setdefault(tenant, asyncio.Lock())

    def _files(self, tenant: str) -> threading.Lock:
        with self._guard:
            return self._file_locks.setdefault(tenant, threading.Lock())

    async def _work(self, tenant: str) -> None:
        while tenant in self._pending:
            self._pending.discard(tenant)
            async with self._lock(tenant):
                try:
                    await asyncio.get_running_loop().run_in_executor(self._executor, self.run, tenant)
                except Exception:  # the documents stay in_progress; the next upload or start runs again
                    log.exception("indexing tenant %s's uploaded documents failed", tenant)

    def run(self, tenant: str) -> None:
        """One run over the tenant's uploads: folder and index brought to what the database says."""
        folder = self.folder(tenant)
        with self._files(tenant):
            rows = self.store.all(tenant, deleting=True)
            live = {row.id: row for row in rows if row.status != "deleting"}
            folder.mkdir(parents=True, exist_ok=True)
            for child in folder.iterdir():
                row = live.get(child.name)
                if row is None or child.is_symlink() or not child.is_dir():
                    _remove(child)
                    continue
                for inner in child.iterdir():  # a temporary file a kill left, say
                    if inner.name != row.filename:
                        _remove(inner)
            missing = {i for i, row in live.items() if not (folder / self.source_of(row)).is_file()}
        # Uploads made from here on are scanned by this run or the next; their status is the next run's.
        for document_id in missing:  # its bytes never reached the disk: a kill between the row and the write
            self.store.finish(
                tenant, document_id, "failed", "the upload was interrupted: upload the file again", 0
            )
        report = self.ingest.reindexer().run(folder, tenant)
        reasons = {skipped.path: skipped.reason for skipped in report.skipped}
        states = self.ingest.index.document_states(tenant)
        for row in live.values():
            if row.id in missing:
                continue
            source = self.source_of(row)
            if source in reasons:
                self.store.finish(tenant, row.id, "failed", reasons[source], 0)
            elif source in states:
                self.store.finish(tenant, row.id, "completed", None, states[source].max_index + 1)
            else:
                self.store.finish(tenant, row.id, "failed", "no text to index", 0)
        self.store.remove(tenant, [row.id for row in rows if row.status == "deleting"])
        log.info("indexed tenant %s's uploads: %s", tenant, report.to_json())

    def _write(self, document: DocumentRow, data: bytes) -> None:
        """The bytes, durably: a temporary file, fsynced, renamed into place."""
        target = self.path_of(document)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.root / ".incoming" / f"{document.id}.part"  # outside every tenant's scanned folder
        temporary.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        temporary.rename(target)
        sync_folder(target.parent)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _lowest_priority() -> None:
    """On Linux a thread is a task of its own, so this thread alone runs at nice 19."""
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
