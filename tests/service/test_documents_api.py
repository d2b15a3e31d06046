"""Documents over HTTP, per tenant, on the session's real vLLM and the embedded Qdrant: a tenant created over
HTTP answers from what it uploads while another keeps answering; the same bytes index once; another tenant's
ids are 404; bad uploads are 4xx naming why, a corrupt file fails alone, and names cannot reach outside."""

import io
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docx
import httpx
import pytest

from tests.service.conftest import KEYS, Service, service_fixture
from tests.service.test_tenants_api import ADMIN, Load, create_tenant
from tests.support.chat import bearer, post_chat, user
from tests.support.documents import write_pdf

MAX_FILE_BYTES = 300_000
documents_service = service_fixture("documents", max_file_bytes=MAX_FILE_BYTES)
FACT = "# Flux capacitor\n\nThe Umbrella flux capacitor needs 1.21 gigawatts to start.\n"


def upload(service: Service, key: str, name: str, data: bytes) -> httpx.Response:
    return httpx.post(
        f"{service.url}/v1/documents", files={"file": (name, data)}, headers=bearer(key), timeout=120
    )


def settled(service: Service, key: str, document_id: str) -> dict[str, Any]:
    """The document once its indexing has finished, completed or failed."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = httpx.get(f"{service.url}/v1/documents/{document_id}", headers=bearer(key)).json()
        if found["status"] != "in_progress":
            return dict(found)
        time.sleep(0.1)
    raise AssertionError(f"{document_id} still in progress")


def hits(service: Service, key: str, query: str) -> list[dict[str, Any]]:
    response = httpx.post(
        f"{service.url}/v1/retrieve", json={"query": query, "k": 5}, headers=bearer(key), timeout=60
    )
    assert response.status_code == 200, response.text
    return list(response.json()["hits"])


def word_file(heading: str, text: str) -> bytes:
    document = docx.Document()
    document.add_heading(heading, level=1)
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def umbrella(documents_service: Service) -> str:
    """A tenant created over HTTP, with no folder: its documents come through the API. Its key."""
    return create_tenant(documents_service, "umbrella")


def test_a_tenant_made_over_http_answers_from_uploads_while_another_keeps_answering(
    documents_service: Service, umbrella: str, tmp_path: Path
) -> None:
    service = documents_service
    pdf = tmp_path / "manual.pdf"
    write_pdf(pdf, [["Umbrella manual", "The time circuits run on plutonium."]])
    with Load(service, KEYS["globex"]) as globex:
        globex.wait_for(2, KEYS["globex"])
        sent = {
            "capacitor.md": FACT.encode(),
            "circuits.pdf": pdf.read_bytes(),
            "hoverboard.docx": word_file("Hoverboard", "The Umbrella hoverboard does not work on water."),
        }
        ids = {}
        for name, data in sent.items():
            response = upload(service, umbrella, name, data)
            assert response.status_code == 202, response.text
            assert response.json()["status"] in ("in_progress", "completed")
            ids[name] = response.json()["id"]
        done = {name: settled(service, umbrella, i) for name, i in ids.items()}
        assert {d["status"] for d in done.values()} == {"completed"}, done
        assert all(d["chunks"] >= 1 for d in done.values())
        (top, *_) = hits(service, umbrella, "How many gigawatts does the flux capacitor need?")
        assert top["source"] == f"{ids['capacitor.md']}/capacitor.md" and "1.21 gigawatts" in top["text"]
        (top, *_) = hits(service, umbrella, "Does the hoverboard work on water?")
        assert top["source"].endswith("/hoverboard.docx") and top["heading"] == "Hoverboard"
        answer = post_chat(service.url, umbrella, {"messages": user("What does the flux capacitor need?")})
        assert answer.status_code == 200, answer.text
        assert any(c["source"].endswith("capacitor.md") for c in answer.json()["citations"])
        globex.wait_for(len(globex.statuses) + 1, KEYS["globex"])
    assert globex.statuses and all(status == 200 for _, status in globex.statuses)
    listed = httpx.get(f"{service.url}/v1/documents", headers=bearer(umbrella)).json()["data"]
    assert {d["filename"] for d in listed} >= set(sent)


def test_the_same_bytes_again_or_at_once_are_one_document_indexed_once(
    documents_service: Service, umbrella: str
) -> None:
    service = documents_service
    data = b"# Delorean\n\nThe Umbrella Delorean reaches 88 miles per hour on the test track.\n"
    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda i: upload(service, umbrella, f"delorean-{i}.md", data), range(6)))
    assert {r.status_code for r in responses} == {202}
    (document_id,) = {r.json()["id"] for r in responses}
    first = settled(service, umbrella, document_id)
    chunks = service.state.ingest.index.count_chunks("umbrella")
    again = upload(service, umbrella, "renamed.md", data)
    assert again.status_code == 202 and again.json()["id"] == document_id
    assert settled(service, umbrella, document_id)["chunks"] == first["chunks"]
    assert service.state.ingest.index.count_chunks("umbrella") == chunks
    sources = [h["source"] for h in hits(service, umbrella, "How fast does the Delorean go?")]
    assert sources.count(sources[0]) == first["chunks"]  # its chunks once, not once per upload


def test_another_tenants_documents_are_not_found_by_guessed_or_leaked_ids(
    documents_service: Service, umbrella: str
) -> None:
    service = documents_service
    theirs = upload(service, umbrella, "secret.md", b"# Secret\n\nThe Umbrella launch code is 4815.\n")
    document_id = theirs.json()["id"]
    settled(service, umbrella, document_id)
    other = create_tenant(service, "cyberdyne")
    for method in ("GET", "DELETE"):
        for guess in (document_id, "doc_000000000000000000000000", "../umbrella"):
            response = httpx.request(method, f"{service.url}/v1/documents/{guess}", headers=bearer(other))
            assert response.status_code == 404, (method, guess, response.text)
            assert "umbrella" not in response.text
    assert httpx.get(f"{service.url}/v1/documents", headers=bearer(other)).json()["data"] == []
    assert not any("4815" in h["text"] for h in hits(service, other, "What is the launch code?"))
    assert settled(service, umbrella, document_id)["status"] == "completed"  # untouched


def test_deleting_a_document_takes_its_chunks_out_of_the_index(
    documents_service: Service, umbrella: str
) -> None:
    service = documents_service
    sent = upload(service, umbrella, "mrfusion.md", b"# Mr. Fusion\n\nMr. Fusion runs on banana peels.\n")
    document_id = sent.json()["id"]
    settled(service, umbrella, document_id)
    assert any("banana" in h["text"] for h in hits(service, umbrella, "What does Mr. Fusion run on?"))
    deleted = httpx.delete(f"{service.url}/v1/documents/{document_id}", headers=bearer(umbrella))
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert httpx.get(f"{service.url}/v1/documents/{document_id}", headers=bearer(umbrella)).status_code == 404
    deadline = time.monotonic() + 60
    while any("banana" in h["text"] for h in hits(service, umbrella, "What does Mr. Fusion run on?")):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert not (service.data_dir / "documents" / "umbrella" / document_id).exists()


@pytest.mark.parametrize(
    ("name", "data", "status", "says"),
    [
        ("big.md", b"# Big\n\n" + b"x" * MAX_FILE_BYTES, 413, "bytes"),
        ("logo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, 415, "a PNG image"),
        ("report.docx", b"%PDF-1.4\n%%EOF\n", 415, "PDF"),
        ("notes.md", b"text\x00with a NUL", 415, "binary"),
    ],
)
def test_a_bad_upload_is_a_4xx_naming_why_and_stores_nothing(
    documents_service: Service, umbrella: str, name: str, data: bytes, status: int, says: str
) -> None:
    service = documents_service
    before = httpx.get(f"{service.url}/v1/documents", headers=bearer(umbrella)).json()["data"]
    response = upload(service, umbrella, name, data)
    assert response.status_code == status, response.text
    assert says in response.json()["error"]["message"]
    assert httpx.get(f"{service.url}/v1/documents", headers=bearer(umbrella)).json()["data"] == before


def test_a_corrupt_word_file_fails_alone_with_its_reason(documents_service: Service, umbrella: str) -> None:
    service = documents_service
    good = word_file("Grays", "Grays Sports Almanac covers 1950 to 2000.")
    response = upload(service, umbrella, "broken.docx", good[: len(good) // 2])
    assert response.status_code == 202, response.text
    failed = settled(service, umbrella, response.json()["id"])
    assert failed["status"] == "failed" and "Word" in failed["error"], failed
    fine = upload(service, umbrella, "almanac.docx", good)
    assert settled(service, umbrella, fine.json()["id"])["status"] == "completed"


@pytest.mark.parametrize(
    "name", ["../../../../etc/evil.md", "..\\..\\evil.md", "a/b/../../evil.md", ".hidden.md", "con:\x07x.md"]
)
def test_path_tricks_in_a_file_name_are_harmless(
    documents_service: Service, umbrella: str, name: str
) -> None:
    service = documents_service
    data = f"# Evil\n\nA file named {name!r} stays inside its folder.\n".encode()
    response = upload(service, umbrella, name, data)
    assert response.status_code == 202, response.text
    document = settled(service, umbrella, response.json()["id"])
    assert document["status"] == "completed"
    assert "/" not in document["filename"] and "\\" not in document["filename"]
    assert not document["filename"].startswith(".") and document["filename"].endswith(".md")
    stored = service.data_dir / "documents" / "umbrella" / document["id"] / document["filename"]
    assert stored.read_bytes() == data
    assert not (service.data_dir.parent / "evil.md").exists() and not Path("/etc/evil.md").exists()


def test_a_folder_tenant_takes_no_uploads_and_admin_calls_need_the_admin_key(
    documents_service: Service,
) -> None:
    response = upload(documents_service, KEYS["acme"], "x.md", b"# X\n\ntext\n")
    assert response.status_code == 409 and "folder" in response.json()["error"]["message"]
    assert upload(documents_service, "no-such-key", "x.md", b"# X\n\ntext\n").status_code == 401
    assert (
        httpx.get(f"{documents_service.url}/admin/tenants", headers=bearer(KEYS["acme"])).status_code == 401
    )
    assert httpx.get(f"{documents_service.url}/admin/tenants", headers=ADMIN).status_code == 200
