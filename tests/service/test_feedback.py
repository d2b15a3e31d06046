"""POST /v1/feedback on the real service: stored for the key's tenant, never the body's; bad bodies are 400s
naming the field; concurrent posts all land whole; a full store is a 429 that keeps what it holds."""

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.service.conftest import KEYS, Service, service_fixture

CAP = 256 * 1024
# A service of its own, with a small cap, so filling a tenant's store is quick.
feedback_service = service_fixture("feedback", feedback_max_bytes=CAP)

BODY: dict[str, Any] = {
    "rating": "up",
    "comment": "exactly right",
    "messages": [{"role": "user", "content": "How long does the battery run?"}],
    "answer": "The Roadrunner R2 battery runs for 14 hours [1].",
    "model": "acme-style--v1",
    "citations": [{"index": 1, "source": "battery.md", "heading": "Battery", "cited": True}],
    "response_id": "chatcmpl-123",
}


def _post(service: Service, body: object, key: str | None = KEYS["acme"]) -> httpx.Response:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    # json.dumps escapes a lone surrogate as JSON allows ("\\ud800"); no UTF-8 encoder would take it.
    content = json.dumps(body).encode()
    return httpx.post(f"{service.url}/v1/feedback", content=content, headers=headers, timeout=30)


def _stored(service: Service, tenant: str) -> list[dict[str, Any]]:
    """The tenant's records as the state database holds them, oldest first."""
    if tenant not in service.state.feedback.tenants():
        return []
    return [r.model_dump() for r in service.state.feedback.read(tenant).records]


def test_feedback_is_stored_for_the_tenant_whose_key_sent_it(feedback_service: Service) -> None:
    acme = _post(feedback_service, BODY)
    assert acme.status_code == 201, acme.text
    globex = _post(feedback_service, {**BODY, "rating": "down"}, KEYS["globex"])
    assert globex.status_code == 201, globex.text
    assert acme.json() == {"id": acme.json()["id"], "tenant": "acme", "rating": "up"}
    assert globex.json()["tenant"] == "globex" and globex.json()["rating"] == "down"
    (record,) = [r for r in _stored(feedback_service, "acme") if r["id"] == acme.json()["id"]]
    assert record["tenant"] == "acme" and record["created_at"].endswith("+00:00")
    assert {k: record[k] for k in BODY} == BODY
    assert acme.json()["id"] not in {r["id"] for r in _stored(feedback_service, "globex")}
    assert globex.json()["id"] in {r["id"] for r in _stored(feedback_service, "globex")}


def test_a_body_that_names_a_tenant_is_refused_and_stores_nothing(feedback_service: Service) -> None:
    before = _stored(feedback_service, "globex")
    response = _post(feedback_service, {**BODY, "tenant": "globex"}, KEYS["acme"])
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "tenant"
    assert _stored(feedback_service, "globex") == before


@pytest.mark.parametrize("key", [None, "not-a-key", "admin-key"])
def test_feedback_needs_a_tenant_key(feedback_service: Service, key: str | None) -> None:
    response = _post(feedback_service, BODY, key)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


_USER = {"role": "user", "content": "q"}
_ASSISTANT = {"role": "assistant", "content": "a"}


@pytest.mark.parametrize(
    ("change", "param", "says"),
    [
        ({"rating": "meh"}, "rating", "Input should be 'up' or 'down'"),
        ({"rating": None}, "rating", "Input should be 'up' or 'down'"),
        ({"comment": "x" * 2001}, "comment", "at most 2000 characters"),
        ({"messages": []}, "messages", "at least 1 item"),
        ({"messages": [_USER] * 51}, "messages", "at most 50 items"),
        ({"messages": [_USER, _ASSISTANT]}, "messages", "the last message must be the user's question"),
        ({"messages": [{"role": "user", "content": " "}]}, "messages", "the question, is blank"),
        ({"messages": [{"role": "system", "content": "q"}]}, "messages.0.role", "'user' or 'assistant'"),
        ({"messages": [{**_USER, "name": "x"}]}, "messages.0.name", "Extra inputs are not permitted"),
        ({"messages": [{"role": "user", "content": "x" * 16001}]}, "messages.0.content", "at most 16000"),
        ({"answer": "x" * 32001}, "answer", "at most 32000 characters"),
        ({"answer": None}, "answer", "valid string"),
        ({"model": "m" * 201}, "model", "at most 200 characters"),
        ({"response_id": "r" * 201}, "response_id", "at most 200 characters"),
        ({"citations": [{"index": 0, "source": "a.md", "cited": True}]}, "citations.0.index", "greater than"),
        ({"citations": [{"index": 1, "source": "s" * 1001, "cited": True}]}, "citations.0.source", "at most"),
        ({"citations": [{"index": 1, "source": "a.md", "cited": True, "text": "t"}]}, "citations.0.text",
         "Extra inputs"),
        ({"citations": [{"index": 1, "source": "a.md", "cited": True}] * 51}, "citations", "at most 50"),
        ({"user": "acme"}, "user", "Extra inputs are not permitted"),
        ({"answer": "\ud800"}, "answer", "invalid Unicode"),
    ],
)  # fmt: skip
def test_a_bad_body_is_a_400_naming_the_field(
    feedback_service: Service, change: dict[str, Any], param: str, says: str
) -> None:
    response = _post(feedback_service, {**BODY, **change})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert says in error["message"], error["message"]


def test_malformed_json_and_a_missing_body_are_400s(feedback_service: Service) -> None:
    headers = {"Authorization": f"Bearer {KEYS['acme']}", "Content-Type": "application/json"}
    for content in (b'{"rating": "up", ', b""):
        response = httpx.post(f"{feedback_service.url}/v1/feedback", content=content, headers=headers)
        assert response.status_code == 400, response.text


def test_twenty_concurrent_posts_are_all_stored_whole(feedback_service: Service) -> None:
    bodies = [{**BODY, "answer": f"answer {i}: " + "z" * 3000} for i in range(20)]
    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda body: _post(feedback_service, body), bodies))
    assert [r.status_code for r in responses] == [201] * 20
    stored = {r["id"]: r for r in _stored(feedback_service, "acme")}  # every line parses
    for body, response in zip(bodies, responses, strict=True):
        assert stored[response.json()["id"]]["answer"] == body["answer"]


def test_a_full_store_is_a_429_that_keeps_every_record_it_holds(feedback_service: Service) -> None:
    original = _stored(feedback_service, "globex")
    taken: list[str] = []
    try:
        big = {**BODY, "answer": "g" * 30_000}
        for _ in range(CAP // 30_000 + 2):
            response = _post(feedback_service, big, KEYS["globex"])
            if response.status_code != 201:
                break
            taken.append(response.json()["id"])
        assert response.status_code == 429, response.text
        assert "Retry-After" not in response.headers
        error = response.json()["error"]
        assert error["type"] == "insufficient_quota"
        assert "globex's feedback store is full" in error["message"]
        assert "ragserve feedback export" in error["message"]
        stored = _stored(feedback_service, "globex")
        assert stored[: len(original)] == original and [r["id"] for r in stored[len(original) :]] == taken
        assert _post(feedback_service, BODY, KEYS["acme"]).status_code == 201  # acme's store is its own
    finally:
        feedback_service.state.feedback.clear("globex", taken)
