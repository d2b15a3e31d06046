"""Each tenant's feedback in the state database, on SQLite and on a real PostgreSQL: records with their id and
time, every one kept under concurrent appends from threads and processes, a cap of each tenant's own that
refuses without touching what is stored, and an older data dir's feedback files imported with nothing lost."""

import json
import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ragserve.adapters.assignments import AssignmentStore
from ragserve.errors import FeedbackFullError, FeedbackNotFoundError, InvalidTenantError
from ragserve.service.feedback.record import FeedbackRequest
from ragserve.service.feedback.store import FeedbackStore
from ragserve.service.legacy_import import import_legacy_files
from ragserve.settings import Settings
from ragserve.state.database import Database
from ragserve.state.tenants import TenantStore


def feedback(
    rating: str = "up", answer: str = "The battery lasts 14 hours [1].", **extra: Any
) -> FeedbackRequest:
    """A body as the playground posts it: one question, the answer, the citations the answer came with."""
    return FeedbackRequest.model_validate({
        "rating": rating,
        "messages": [{"role": "user", "content": "How long does the battery last?"}],
        "answer": answer,
        "citations": [{"index": 1, "source": "battery.md", "heading": "Battery", "cited": True}],
        **extra,
    })  # fmt: skip


def with_tenants(database: Database, *names: str) -> Database:
    for name in names:
        TenantStore(database).create(name, {}, None, "api")
    return database


@pytest.fixture
def store(database: Database) -> FeedbackStore:
    return FeedbackStore(with_tenants(database, "acme", "globex"), max_bytes=1024 * 1024)


def test_each_tenant_has_its_own_records_with_id_and_time(store: FeedbackStore) -> None:
    up = store.append("acme", feedback(comment="right", model="acme-style--v1", response_id="chatcmpl-1"))
    down = store.append("globex", feedback("down"))
    assert up.id != down.id and up.id.startswith("fb-")
    (stored,) = store.read("acme").records
    assert stored.tenant == "acme" and stored.comment == "right" and stored.model == "acme-style--v1"
    assert stored.created_at.endswith("+00:00") and stored == up
    assert [r.id for r in store.read("globex").records] == [down.id]
    assert store.tenants() == ["acme", "globex"]


def test_concurrent_appends_from_threads_keep_every_record_whole(store: FeedbackStore) -> None:
    answers = [f"Answer {i}: " + "x" * (5000 + i) for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda a: store.append("acme", feedback(answer=a)).id, answers))
    stored = store.read("acme")
    assert not stored.skipped
    assert sorted(r.id for r in stored.records) == sorted(ids)
    assert sorted(r.answer for r in stored.records) == sorted(answers)


def _answer(worker: int, i: int) -> str:
    return f"worker {worker} answer {i} " + "y" * 20_000


def _append_many(url: str, worker: int) -> None:
    store = FeedbackStore(Database(url), max_bytes=64 * 1024 * 1024)
    for i in range(25):
        store.append("acme", feedback(answer=_answer(worker, i)))


def test_appends_from_several_processes_are_all_kept(store: FeedbackStore, database: Database) -> None:
    context = multiprocessing.get_context("spawn")
    url = database.url.render_as_string(hide_password=False)
    workers = [context.Process(target=_append_many, args=(url, w)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    stored = store.read("acme")
    assert sorted(r.answer for r in stored.records) == sorted(
        _answer(w, i) for w in range(4) for i in range(25)
    )


def test_the_cap_refuses_an_append_and_leaves_the_records_as_they_were(database: Database) -> None:
    store = FeedbackStore(with_tenants(database, "acme", "globex"), max_bytes=4096)
    store.append("acme", feedback(answer="a" * 1000))
    store.append("acme", feedback(answer="b" * 1000))
    before = store.read("acme").records
    with pytest.raises(FeedbackFullError, match=r"acme's feedback store is full .*ragserve feedback export"):
        store.append("acme", feedback(answer="c" * 2000))
    assert store.read("acme").records == before
    store.append("globex", feedback(answer="c" * 2000))  # the cap is each tenant's own
    assert store.clear("acme", [r.id for r in before]) == 2
    store.append("acme", feedback(answer="c" * 2000))  # room again, once exported and cleared


def test_reading_a_tenant_without_feedback_names_those_with_some(store: FeedbackStore) -> None:
    store.append("acme", feedback())
    with pytest.raises(FeedbackNotFoundError, match=r"no feedback for tenant 'initech' in .*: acme\)"):
        store.read("initech")
    with pytest.raises(InvalidTenantError):
        store.read("../acme")
    with pytest.raises(InvalidTenantError, match="unknown tenant 'initech'"):
        store.append("initech", feedback())


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"\xff\xfe\n", "not UTF-8 (byte 0)"),
        (b"{oops\n", "not JSON"),
        (b'{"id": "fb-1"}\n', "not a feedback record"),
        (b'"just a string"\n', "not a feedback record"),
        (b'{"id": "fb-2", "created_at": "t", "tenant": "globex", "rating": "up", "answer": "a", "messages": '
         b'[{"role": "user", "content": "q"}]}\n', "a record of tenant 'globex', not 'acme'"),
        (b'{"id": "fb-3", "created_at": "t", "tenant": "acme", "rating": "up", "answer": "\\ud800", '
         b'"messages": [{"role": "user", "content": "q"}]}\n', "invalid Unicode"),
        (b'{"id": "fb-torn", "rating": "u', "not JSON"),
    ],
)  # fmt: skip
def test_an_older_data_dirs_feedback_file_is_imported_once_keeping_every_readable_line(
    store: FeedbackStore,
    database: Database,
    data_dir: Path,
    line: bytes,
    problem: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """As the files were written before the database: one JSON record a line; a bad line is logged with its
    file and number, and kept in the file, which is moved aside, never deleted."""
    folder = data_dir / "feedback"
    folder.mkdir(parents=True)
    good = [_legacy_record(f"fb-{i}", "acme") for i in range(2)]
    text = json.dumps(good[0]).encode() + b"\n" + line + json.dumps(good[1]).encode() + b"\n"
    if not line.endswith(b"\n"):  # a torn last line: the file ends with it
        text = b"\n".join(json.dumps(g).encode() for g in good) + b"\n" + line
    (folder / "acme.jsonl").write_bytes(text)
    (folder / "initech.jsonl").write_bytes(json.dumps(_legacy_record("fb-9", "initech")).encode() + b"\n")
    said = import_legacy_files(database, Settings(data_dir=data_dir), store)
    assert [r.id for r in store.read("acme").records] == ["fb-0", "fb-1"]
    assert any(problem in message and "acme.jsonl:" in message for message in caplog.messages)
    assert (folder / "imported" / "acme.jsonl").read_bytes() == text and not (folder / "acme.jsonl").exists()
    assert (folder / "initech.jsonl").exists()  # no such tenant yet: left for a later start
    assert any("initech" in s and "not imported yet" in s for s in said)
    assert import_legacy_files(database, Settings(data_dir=data_dir), store) == [said[-1]]  # nothing twice
    assert len(store.read("acme").records) == 2


def _legacy_record(record_id: str, tenant: str) -> dict[str, Any]:
    return {"id": record_id, "created_at": "2026-11-01T10:00:00.000+00:00", "tenant": tenant,
            **feedback().model_dump()}  # fmt: skip


def test_an_older_data_dirs_adapter_assignments_are_imported_once(database: Database, data_dir: Path) -> None:
    """Those of tenants the database knows; one assigned since, through the database, is newer and kept."""
    with_tenants(database, "acme", "globex", "initech")
    store = FeedbackStore(database, max_bytes=1024)
    AssignmentStore(database).set("initech", "style@v3")
    data_dir.mkdir(parents=True, exist_ok=True)
    legacy = {"acme": "style@v1", "globex": "", "initech": "style@v2", "gone": "style@v1"}
    (data_dir / "assignments.json").write_text(json.dumps(legacy))
    (said,) = import_legacy_files(database, Settings(data_dir=data_dir), store)
    assert "imported 3 assignments; left out, no such tenant: gone" in said
    assert AssignmentStore(database).read() == {"acme": "style@v1", "globex": "", "initech": "style@v3"}
    assert json.loads((data_dir / "assignments.json.imported").read_text()) == legacy
    assert not (data_dir / "assignments.json").exists()
    assert import_legacy_files(database, Settings(data_dir=data_dir), store) == []
