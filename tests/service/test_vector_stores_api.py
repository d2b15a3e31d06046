"""OpenAI's Files and Vector Stores APIs, driven by the unchanged `openai` SDK against the service on the
embedded Qdrant: upload, attach and poll until indexed, search with filters and thresholds, batches,
detaching, the default store; another tenant's ids are 404; bad input is a 4xx naming the field."""

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.service.conftest import KEYS, Service, service_fixture
from tests.service.test_tenants_api import create_tenant
from tests.support.chat import bearer, openai_client

MAX_FILE_BYTES = 200_000
stores_service = service_fixture("vector-stores", max_file_bytes=MAX_FILE_BYTES)
CAPACITOR = b"# Flux capacitor\n\nThe Initech flux capacitor needs 1.21 gigawatts to start.\n"
TPS = b"# TPS reports\n\nEvery TPS report carries a cover sheet, filed by Friday noon.\n"
STAPLER = b"# Stapler\n\nThe red Swingline stapler belongs to Milton, on desk 4.\n"


@pytest.fixture(scope="module")
def initech(stores_service: Service) -> str:
    """A tenant made over HTTP, whose documents come through the API. Its key."""
    return create_tenant(stores_service, "initech")


@pytest.fixture(scope="module")
def client(stores_service: Service, initech: str) -> Iterator[openai.OpenAI]:
    with openai_client(stores_service.url, initech) as sdk:
        yield sdk


def test_files_are_created_listed_read_and_deleted_through_the_sdk(client: openai.OpenAI) -> None:
    first = client.files.create(file=("tps.md", TPS), purpose="assistants")
    second = client.files.create(file=("stapler.md", STAPLER), purpose="user_data")
    assert first.object == "file" and first.filename == "tps.md" and first.bytes == len(TPS)
    assert second.purpose == "user_data"
    assert client.files.retrieve(first.id).id == first.id
    assert client.files.content(first.id).content == TPS
    assert client.files.create(file=("again.md", TPS), purpose="assistants").id == first.id  # same bytes
    ids = [f.id for f in client.files.list(limit=1)]  # the SDK follows the pages, newest first
    assert ids[:2] == [second.id, first.id]
    assert [f.id for f in client.files.list(purpose="user_data")] == [second.id]
    assert client.files.delete(second.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(second.id)


def test_upload_and_poll_then_search_finds_the_file_with_its_attributes(client: openai.OpenAI) -> None:
    store = client.vector_stores.create(name="engineering", metadata={"team": "hw"})
    assert store.object == "vector_store" and store.name == "engineering"
    attached = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("capacitor.md", CAPACITOR), attributes={"year": 1985, "kind": "spec"}
    )
    assert attached.status == "completed" and attached.attributes == {"year": 1985, "kind": "spec"}
    results = client.vector_stores.search(store.id, query="How many gigawatts does the capacitor need?")
    (top, *_) = list(results)
    assert top.file_id == attached.id and top.filename == "capacitor.md"
    assert 0 < top.score <= 1 and "1.21 gigawatts" in top.content[0].text
    assert top.attributes == {"year": 1985, "kind": "spec"}

    def found(**options: Any) -> list[str]:
        return [
            r.file_id for r in client.vector_stores.search(store.id, query="gigawatts capacitor", **options)
        ]

    assert found(filters={"type": "gte", "key": "year", "value": 1980}) == [attached.id]
    assert found(filters={"type": "eq", "key": "kind", "value": "memo"}) == []
    either = {
        "type": "or",
        "filters": [
            {"type": "eq", "key": "kind", "value": "memo"},
            {"type": "in", "key": "kind", "value": ["spec"]},
        ],
    }
    assert found(filters=either) == [attached.id]
    assert found(ranking_options={"score_threshold": 1.0}) in ([], [attached.id])
    assert client.vector_stores.retrieve(store.id).file_counts.completed == 1
    content = client.vector_stores.files.content(attached.id, vector_store_id=store.id)
    assert "1.21 gigawatts" in " ".join(part.text or "" for part in content)

    other = client.vector_stores.create(name="empty")
    assert list(client.vector_stores.search(other.id, query="gigawatts capacitor")) == []
    default = [r.file_id for r in client.vector_stores.search("vs_default", query="gigawatts capacitor")]
    assert attached.id in default  # every file of the tenant is in its default store

    client.vector_stores.files.delete(attached.id, vector_store_id=store.id)
    assert found() == []  # detached at once
    assert client.files.retrieve(attached.id).id == attached.id  # and still the tenant's file


def test_a_batch_is_polled_until_its_files_are_indexed(client: openai.OpenAI) -> None:
    store = client.vector_stores.create(name="batched")
    batch = client.vector_stores.file_batches.upload_and_poll(
        store.id,
        files=[
            ("memo.md", b"# Memo\n\nThe Initech memo moves the party to Saturday.\n"),
            ("broken.pdf", b"%PDF-1.4 not really"),
        ],
    )
    assert batch.status == "completed" and batch.file_counts.total == 2
    assert batch.file_counts.completed == 1 and batch.file_counts.failed == 1
    files = list(client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id))
    failed = [f for f in files if f.status == "failed"]
    assert len(files) == 2 and len(failed) == 1 and failed[0].last_error is not None
    listed = [s.id for s in client.vector_stores.list()]
    assert store.id in listed and "vs_default" in listed
    client.vector_stores.update(store.id, name="renamed")
    assert client.vector_stores.retrieve(store.id).name == "renamed"
    assert client.vector_stores.delete(store.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(store.id)
    assert all(client.files.retrieve(f.id) for f in files)  # deleting a store keeps its files


def test_another_tenants_stores_and_files_are_not_found(
    stores_service: Service, client: openai.OpenAI
) -> None:
    store = client.vector_stores.create(name="secret")
    secret = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("code.md", b"# Code\n\nThe Initech vault code is 4815.\n")
    )
    other_key = create_tenant(stores_service, "initrode")
    with openai_client(stores_service.url, other_key) as other:
        mine = other.vector_stores.create(name="mine")
        for call in (
            lambda: other.vector_stores.retrieve(store.id),
            lambda: other.vector_stores.search(store.id, query="vault code"),
            lambda: other.vector_stores.files.retrieve(secret.id, vector_store_id=store.id),
            lambda: other.vector_stores.files.create(vector_store_id=mine.id, file_id=secret.id),
            lambda: other.vector_stores.delete(store.id),
            lambda: other.files.retrieve(secret.id),
            lambda: other.files.content(secret.id),
            lambda: other.files.delete(secret.id),
        ):
            with pytest.raises(openai.NotFoundError) as caught:
                call()
            assert "initech" not in str(caught.value)
        assert [s.id for s in other.vector_stores.list(order="asc")] == ["vs_default", mine.id]
        assert list(other.files.list()) == []
        assert not any(
            "4815" in r.content[0].text for r in other.vector_stores.search("vs_default", query="vault code")
        )
    assert client.vector_stores.files.retrieve(secret.id, vector_store_id=store.id).status == "completed"


def test_a_tenant_with_a_docs_folder_searches_it_and_takes_no_uploads(stores_service: Service) -> None:
    with openai_client(stores_service.url, KEYS["acme"]) as acme:
        (top, *_) = acme.vector_stores.search("vs_default", query="How long does the battery run?")
        assert top.file_id == "battery.md" and "14 hours" in top.content[0].text
        with pytest.raises(openai.ConflictError):
            acme.files.create(file=("x.md", b"# X\n\nx\n"), purpose="assistants")


@pytest.mark.parametrize(
    ("method", "path", "body", "param"),
    [
        ("POST", "/vector_stores", {"name": "x", "colour": "red"}, "colour"),
        (
            "POST",
            "/vector_stores",
            {"expires_after": {"anchor": "last_active_at", "days": 1}},
            "expires_after",
        ),
        ("POST", "/vector_stores", {"chunking_strategy": {"type": "static"}}, "chunking_strategy.type"),
        ("POST", "/vector_stores", {"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ("POST", "/vector_stores/vs_default/search", {"query": "x", "max_num_results": 0}, "max_num_results"),
        ("POST", "/vector_stores/vs_default/search", {"query": "x", "rewrite_query": True}, "rewrite_query"),
        ("POST", "/vector_stores/vs_default/search", {"query": "x", "filters": {"type": "like"}}, "filters"),
        (
            "POST",
            "/vector_stores/vs_default/search",
            {"query": "x", "ranking_options": {"score_threshold": 2}},
            "ranking_options.score_threshold",
        ),
        ("POST", "/vector_stores/vs_default/files", {"file_id": "doc_1"}, "vector_store_id"),
        ("DELETE", "/vector_stores/vs_default", None, "vector_store_id"),
        ("GET", "/files?after=doc_000000000000000000000000", None, "after"),
    ],
)
def test_bad_requests_are_400_naming_the_field(
    stores_service: Service, initech: str, method: str, path: str, body: Any, param: str
) -> None:
    response = httpx.request(method, f"{stores_service.url}/v1{path}", json=body, headers=bearer(initech))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"].startswith(param), response.text


def test_bad_uploads_are_4xx_naming_why(stores_service: Service, initech: str) -> None:
    url = f"{stores_service.url}/v1/files"
    wrong = httpx.post(
        url, files={"file": ("a.md", b"# A\n")}, data={"purpose": "fine-tune"}, headers=bearer(initech)
    )
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "purpose"
    missing = httpx.post(url, files={"file": ("a.md", b"# A\n")}, headers=bearer(initech))
    assert missing.status_code == 400 and "purpose" in missing.text
    extra = httpx.post(
        url,
        files={"file": ("a.md", b"# A\n")},
        data={"purpose": "assistants", "expires_after[days]": "1"},
        headers=bearer(initech),
    )
    assert extra.status_code == 400 and extra.json()["error"]["param"] == "expires_after[days]"
    big = httpx.post(
        url,
        files={"file": ("a.md", b"#" * (MAX_FILE_BYTES + 1))},
        data={"purpose": "assistants"},
        headers=bearer(initech),
    )
    assert big.status_code == 413
    binary = httpx.post(
        url,
        files={"file": ("a.exe", b"MZ\x90\x00" * 64)},
        data={"purpose": "assistants"},
        headers=bearer(initech),
    )
    assert binary.status_code == 415
