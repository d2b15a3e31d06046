"""The per-tenant feedback files: whole lines under concurrent appends from threads and processes, a torn line
costs only itself, the cap refuses without touching the file, and a reader skips bad lines naming them."""

import json
import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ragserve.errors import FeedbackFullError, FeedbackNotFoundError, InvalidTenantError
from ragserve.service.feedback.record import FeedbackRequest
from ragserve.service.feedback.store import FeedbackStore


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


@pytest.fixture
def store(tmp_path: Path) -> FeedbackStore:
    return FeedbackStore(tmp_path / "feedback", max_bytes=1024 * 1024)


def test_each_tenant_has_its_own_file_of_records_with_id_and_time(store: FeedbackStore) -> None:
    up = store.append("acme", feedback(comment="right", model="acme-style--v1", response_id="chatcmpl-1"))
    down = store.append("globex", feedback("down"))
    assert up.id != down.id and up.id.startswith("fb-")
    (line,) = (store.folder / "acme.jsonl").read_text().splitlines()
    stored = json.loads(line)
    assert list(stored)[:3] == ["id", "created_at", "tenant"]
    assert stored["tenant"] == "acme" and stored["comment"] == "right" and stored["model"] == "acme-style--v1"
    assert stored["created_at"].endswith("+00:00")
    assert [r.id for r in store.read("globex").records] == [down.id]
    assert store.tenants() == ["acme", "globex"]
    assert (store.folder / "acme.jsonl").stat().st_mode & 0o777 == 0o600


def test_concurrent_appends_from_threads_keep_every_line_whole(store: FeedbackStore) -> None:
    answers = [f"Answer {i}: " + "x" * (5000 + i) for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda a: store.append("acme", feedback(answer=a)).id, answers))
    stored = store.read("acme")
    assert not stored.skipped
    assert sorted(r.id for r in stored.records) == sorted(ids)
    assert sorted(r.answer for r in stored.records) == sorted(answers)


def _answer(worker: int, i: int) -> str:
    return f"worker {worker} answer {i} " + "y" * 20_000


def _append_many(folder: str, worker: int) -> None:
    store = FeedbackStore(Path(folder), max_bytes=64 * 1024 * 1024)
    for i in range(25):
        store.append("acme", feedback(answer=_answer(worker, i)))


def test_appends_from_several_processes_never_interleave(store: FeedbackStore) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(str(store.folder), w)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    stored = store.read("acme")
    assert not stored.skipped
    assert sorted(r.answer for r in stored.records) == sorted(
        _answer(w, i) for w in range(4) for i in range(25)
    )


def test_an_append_after_a_torn_line_starts_a_new_line_and_keeps_the_earlier_ones(
    store: FeedbackStore,
) -> None:
    first = store.append("acme", feedback())
    path = store.path("acme")
    with path.open("ab") as file:
        file.write(b'{"id": "fb-torn", "rating": "u')  # a writer killed mid-line
    after = store.append("acme", feedback("down"))
    stored = store.read("acme")
    assert [r.id for r in stored.records] == [first.id, after.id]
    (skipped,) = stored.skipped
    assert skipped.line == 2 and str(skipped).startswith(f"{path}:2: not JSON")


def test_the_cap_refuses_an_append_and_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback", max_bytes=4096)
    store.append("acme", feedback(answer="a" * 1000))
    store.append("acme", feedback(answer="b" * 1000))
    before = store.path("acme").read_bytes()
    with pytest.raises(FeedbackFullError, match=r"acme's feedback store is full .*ragserve feedback export"):
        store.append("acme", feedback(answer="c" * 2000))
    assert store.path("acme").read_bytes() == before
    store.append("globex", feedback(answer="c" * 2000))  # the cap is each tenant's own


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"\xff\xfe\n", "not UTF-8 (byte 0)"),
        (b"{oops\n", "not JSON"),
        (b'{"id": "fb-1"}\n', "not a feedback record: rating: Field required"),
        (b'"just a string"\n', "not a feedback record"),
        (b'{"id": "fb-2", "created_at": "t", "tenant": "globex", "rating": "up", "answer": "a", "messages": '
         b'[{"role": "user", "content": "q"}]}\n', "a record of tenant 'globex', not 'acme'"),
        (b'{"id": "fb-3", "created_at": "t", "tenant": "acme", "rating": "up", "answer": "\\ud800", '
         b'"messages": [{"role": "user", "content": "q"}]}\n', "invalid Unicode"),
    ],
)  # fmt: skip
def test_a_reader_skips_a_bad_line_naming_file_line_and_problem(
    store: FeedbackStore, line: bytes, problem: str
) -> None:
    good = store.append("acme", feedback())
    with store.path("acme").open("ab") as file:
        file.write(line)
    again = store.append("acme", feedback())
    stored = store.read("acme")
    assert [r.id for r in stored.records] == [good.id, again.id]
    (skipped,) = stored.skipped
    assert skipped.line == 2 and problem in skipped.problem


def test_a_repeated_id_is_skipped(store: FeedbackStore) -> None:
    store.append("acme", feedback())
    path = store.path("acme")
    path.write_bytes(path.read_bytes() * 2)
    stored = store.read("acme")
    assert len(stored.records) == 1
    assert "is used by an earlier line" in stored.skipped[0].problem


def test_reading_a_tenant_without_feedback_names_the_file_and_those_with_some(store: FeedbackStore) -> None:
    store.append("acme", feedback())
    with pytest.raises(
        FeedbackNotFoundError, match=r"no feedback for tenant 'initech': .*initech.jsonl .*: acme"
    ):
        store.read("initech")
    with pytest.raises(InvalidTenantError):
        store.read("../acme")
