"""Each tenant's feedback, `<data dir>/feedback/<tenant>.jsonl`: one JSON record a line, only ever appended.

An append holds an exclusive flock on the file while it checks the cap and writes its line, with O_APPEND, in
one write, then fsyncs. flock, not lockf: lockf's locks belong to the process, so two threads of one service
would not exclude each other; flock's belong to the open file, so threads and other processes (the service's
workers, an export) all take turns. Lines therefore never interleave, and a line that was answered 201 has
reached the disk. A writer killed mid-write can leave a torn last line: the next append starts on a new line,
so the torn one is the only line lost, and a reader skips it, naming the file and the line. A failed write is
cut back off, leaving the file as it was.
"""

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from pydantic import ValidationError

from ragserve.errors import (
    FeedbackFullError,
    FeedbackNotFoundError,
    InvalidRequestError,
    validation_problems,
)
from ragserve.files import sync_folder
from ragserve.ingest.tenancy import check_tenant
from ragserve.service.feedback.record import FeedbackRecord, FeedbackRequest
from ragserve.settings import Settings

__all__ = ["FeedbackStore", "SkippedLine", "StoredFeedback"]

_SUFFIX = ".jsonl"


@dataclass(frozen=True)
class SkippedLine:
    path: Path
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.problem}"


@dataclass
class StoredFeedback:
    path: Path
    records: list[FeedbackRecord] = field(default_factory=list)
    skipped: list[SkippedLine] = field(default_factory=list)


class FeedbackStore:
    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes

    @classmethod
    def of(cls, settings: Settings) -> "FeedbackStore":
        return cls(settings.feedback_dir, settings.feedback_max_bytes)

    def path(self, tenant: str) -> Path:
        return self.folder / f"{check_tenant(tenant)}{_SUFFIX}"

    def tenants(self) -> list[str]:
        """The tenants that have a feedback file here."""
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob(f"*{_SUFFIX}") if p.is_file())

    def append(self, tenant: str, body: FeedbackRequest) -> FeedbackRecord:
        """Stores the body as a new record of the tenant's, with a fresh id; FeedbackFullError at the cap."""
        data = {
            "id": f"fb-{secrets.token_hex(12)}",
            "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "tenant": tenant,
            **body.model_dump(),
        }
        record = FeedbackRecord.model_validate(data)
        # Not ASCII-escaped, so a record's size is its UTF-8 text; JSON escapes every "\n" inside it.
        line = (json.dumps(data, ensure_ascii=False) + "\n").encode("utf-8")
        path = self.path(tenant)
        self.folder.mkdir(parents=True, exist_ok=True)
        # Owner-only: it holds users' conversations.
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
            written = b"\n" + line if torn else line
            if size + len(written) > self.max_bytes:
                raise FeedbackFullError(
                    f"tenant {tenant}'s feedback store is full ({size:,} bytes; RAGSERVE_FEEDBACK_MAX_BYTES "
                    f"is {self.max_bytes:,}): no more feedback is taken until an operator exports it "
                    "(`ragserve feedback export`) and moves the file away"
                )
            _write_whole(fd, written, size)
            if size == 0:
                sync_folder(self.folder)  # the file's name, new or not, is durable too
        finally:
            os.close(fd)  # and with it the lock
        return record

    def read(self, tenant: str) -> StoredFeedback:
        """Every readable record of the tenant's, oldest first; unreadable lines are skipped and listed."""
        path = self.path(tenant)
        try:
            file = path.open("rb")
        except FileNotFoundError:
            others = ", ".join(self.tenants()) or "none"
            raise FeedbackNotFoundError(
                f"no feedback for tenant {tenant!r}: {path} does not exist (tenants with feedback in "
                f"{self.folder}: {others})"
            ) from None
        stored = StoredFeedback(path)
        seen: set[str] = set()
        with file:
            fcntl.flock(file.fileno(), fcntl.LOCK_SH)  # no append is half-written while this reads
            for number, raw in _lines(file):
                record, problem = _parse(raw, tenant)
                if record is not None and record.id in seen:
                    problem = f"id {record.id} is used by an earlier line"
                if record is None or problem:
                    stored.skipped.append(SkippedLine(path, number, str(problem)))
                    continue
                seen.add(record.id)
                stored.records.append(record)
        return stored


def _write_whole(fd: int, data: bytes, size: int) -> None:
    """Writes and fsyncs all of data; on a failure (a full disk) the file is cut back to `size` bytes."""
    try:
        view = memoryview(data)
        while view:  # one write on a local file system; a short one goes on where it stopped
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise


def _lines(file: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """The file's non-blank lines with their numbers, split at "\\n" only (JSON text can hold U+2028)."""
    for number, raw in enumerate(file, start=1):
        if raw.strip():
            yield number, raw


def _parse(raw: bytes, tenant: str) -> tuple[FeedbackRecord | None, str | None]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte {exc.start})"
    except ValueError as exc:
        torn = "" if raw.endswith(b"\n") else ", a torn last line"
        return None, f"not JSON ({exc}){torn}"
    try:
        record = FeedbackRecord.model_validate(data)
    except ValidationError as exc:
        return None, f"not a feedback record: {validation_problems(exc)}"
    except InvalidRequestError as exc:  # the body's own check, of text no UTF-8 can hold
        return None, f"not a feedback record: {exc}"
    if record.tenant != tenant:
        return None, f"a record of tenant {record.tenant!r}, not {tenant!r}"
    return record, None
