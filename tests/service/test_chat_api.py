"""The HTTP API against a real vLLM server and the real embedded index, driven by the openai client."""

import concurrent.futures
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from ragserve.service.config import BUNDLED_BASE
from tests.service.conftest import ADAPTER, KEYS, Service, service_fixture
from tests.support.chat import ask, openai_client, post_chat
from tests.support.documents import write


def _client(service: Service, tenant: str = "acme") -> openai.OpenAI:
    return openai_client(service.url, KEYS[tenant])


def _ask(service: Service, who: str, question: str, **extra: object) -> dict[str, Any]:
    return ask(service.url, KEYS[who], question, **{"max_tokens": 30, "temperature": 0, **extra})


def test_openai_client_gets_an_answer_with_citations(service: Service) -> None:
    completion = _client(service).chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "How long does the Roadrunner battery last?"}],
        max_tokens=30,
        temperature=0,
    )
    assert completion.choices[0].message.content
    citations = (completion.model_extra or {})["citations"]
    assert citations[0]["source"] == "battery.md"
    fields = {"index", "source", "heading", "chunk_id", "score", "cited", "attributed", "text"}
    assert set(citations[0]) == fields
    assert completion.model == ADAPTER  # acme's default is its adapter


def test_openai_client_streams_and_the_last_chunk_carries_the_citations(service: Service) -> None:
    stream = _client(service).chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "What is the warranty?"}],
        max_tokens=30,
        stream=True,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    citations = (chunks[-1].model_extra or {})["citations"]
    assert {c["source"] for c in citations} <= {"battery.md", "warranty.md"}
    assert citations[0]["source"] == "warranty.md"


def test_langchain_chat_openai_works_unchanged(service: Service) -> None:
    from langchain_openai import ChatOpenAI

    options: dict[str, Any] = {"base_url": f"{service.url}/v1", "api_key": KEYS["globex"], "max_tokens": 20}
    llm = ChatOpenAI(model="default", **options)
    reply = llm.invoke("What is the refund policy?")
    assert isinstance(reply.content, str)
    assert reply.content
    streamed = "".join(str(chunk.content) for chunk in llm.stream("And the warranty?"))
    assert streamed


def test_a_new_fact_is_found_after_reindex_and_cited_by_source(service: Service) -> None:
    write(service.docs["acme"], "launch.md", "# Launch\n\nThe Zorblax-9 launch code is 4417-ALPHA.")
    report = httpx.post(
        f"{service.url}/admin/reindex",
        json={"tenant": "acme"},
        headers={"Authorization": "Bearer admin-key"},
        timeout=60,
    ).json()
    assert report["added"] == 1
    answer = _ask(service, "acme", "What is the Zorblax-9 launch code?")
    assert answer["citations"][0]["source"] == "launch.md"


def test_two_tenants_in_concurrent_requests_get_their_own_documents_and_model(service: Service) -> None:
    jobs = [("acme", "What warranty do you give?"), ("globex", "What warranty do you give?")] * 3
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda job: (job[0], _ask(service, *job)), jobs))
    for tenant, answer in results:
        sources = {c["source"] for c in answer["citations"]}
        own = {p.name for p in service.docs[tenant].iterdir()}
        assert sources <= own, (tenant, sources)
        assert answer["model"] == (ADAPTER if tenant == "acme" else BUNDLED_BASE)


def test_rag_can_be_turned_off_and_k_set(service: Service) -> None:
    assert _ask(service, "globex", "Refunds?", rag=False)["citations"] == []
    assert len(_ask(service, "globex", "Refunds?", k=1)["citations"]) == 1


def test_models_lists_what_the_tenant_may_use(service: Service) -> None:
    assert {m.id for m in _client(service, "acme").models.list()} == {"default", BUNDLED_BASE, ADAPTER}
    assert {m.id for m in _client(service, "globex").models.list()} == {"default", BUNDLED_BASE}


def test_the_base_model_can_be_asked_for_by_name(service: Service) -> None:
    assert _ask(service, "acme", "Hi", model=BUNDLED_BASE)["model"] == BUNDLED_BASE


def test_retrieve_returns_the_tenants_hits(service: Service) -> None:
    response = httpx.post(
        f"{service.url}/v1/retrieve",
        json={"query": "refund damaged bag", "k": 1},
        headers={"Authorization": f"Bearer {KEYS['globex']}"},
    )
    assert response.status_code == 200
    [hit] = response.json()["hits"]
    assert hit["source"] == "refunds.md"


def test_health_readiness_and_metrics(service: Service) -> None:
    assert httpx.get(f"{service.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{service.url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"vllm": "ok", "qdrant": "ok"}
    _ask(service, "globex", "Refunds?")
    metrics = httpx.get(service.metrics_url).text
    assert 'ragserve_requests_total{route="/v1/chat/completions",status="200",tenant="globex"}' in metrics
    for stage in ("retrieve", "prompt", "ttft", "total"):
        assert f'ragserve_stage_seconds_count{{stage="{stage}"}}' in metrics
    assert 'ragserve_tokens_total{direction="completion",tenant="globex"}' in metrics


def _post(
    service: Service, body: object, key: str | None = "acme-key", raw: bytes | None = None
) -> httpx.Response:
    return post_chat(service.url, key, body, raw)


HELLO = {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 5}
TOO_LONG = {"messages": [{"role": "user", "content": "word " * 5000}]}


@pytest.mark.parametrize(
    ("body", "key", "raw", "status", "type_"),
    [
        (HELLO, None, None, 401, "authentication_error"),
        (HELLO, "wrong-key", None, 401, "authentication_error"),
        ({**HELLO, "model": "globex-secret-adapter"}, "acme-key", None, 404, "not_found_error"),
        ({**HELLO, "model": ADAPTER}, "globex-key", None, 404, "not_found_error"),
        (TOO_LONG, "acme-key", None, 400, "invalid_request_error"),
        (None, "acme-key", b'{"messages": [', 400, "invalid_request_error"),
        ({"messages": "not a list"}, "acme-key", None, 400, "invalid_request_error"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "acme-key", None, 400, "invalid_request_error"),
        (None, "acme-key", b'{"messages": [{"role": "user", "content": "' + b"x" * 1_100_000 + b'"}]}', 413,
         "invalid_request_error"),
    ],
)  # fmt: skip
def test_errors_are_openai_shaped_json_with_the_right_status(
    service: Service, body: object, key: str | None, raw: bytes | None, status: int, type_: str
) -> None:
    response = _post(service, body, key, raw)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == type_
    assert error["message"]
    assert "Traceback" not in response.text


def test_openai_client_sees_401_and_404_as_its_own_errors(service: Service) -> None:
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{service.url}/v1", api_key="nope", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError):
        _client(service).chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "x"}])


def test_a_prompt_too_long_is_refused_before_reaching_vllm(service: Service) -> None:
    response = _post(service, TOO_LONG)
    assert response.status_code == 400
    assert "tokens" in response.json()["error"]["message"]


def test_tenant_cannot_be_chosen_in_the_body(service: Service) -> None:
    # A field that could choose it is refused; `user` is OpenAI's end-user id, which chooses nothing.
    refused = _post(service, {**HELLO, "tenant": "acme"}, KEYS["globex"])
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "tenant"
    answer = _ask(service, "globex", "What warranty do you give?", user="acme")
    assert {c["source"] for c in answer["citations"]} <= {"refunds.md", "warranty.md"}
    assert all("Acme" not in json.dumps(c) for c in answer["citations"])


def test_admin_api_needs_the_admin_key(service: Service) -> None:
    for headers in ({}, {"Authorization": "Bearer acme-key"}):
        response = httpx.post(f"{service.url}/admin/reindex", json={"tenant": "acme"}, headers=headers)
        assert response.status_code == 401
    response = httpx.post(
        f"{service.url}/admin/reindex",
        json={"tenant": "nobody"},
        headers={"Authorization": "Bearer admin-key"},
    )
    assert response.status_code == 404


def test_admin_adapters_lists_each_version_and_the_tenants_on_it(service: Service) -> None:
    for headers in ({}, {"Authorization": "Bearer acme-key"}):
        assert httpx.get(f"{service.url}/admin/adapters", headers=headers).status_code == 401
    response = httpx.get(f"{service.url}/admin/adapters", headers={"Authorization": "Bearer admin-key"})
    assert response.status_code == 200, response.text
    (style,) = [a for a in response.json()["adapters"] if a["name"] == "acme-style"]
    versions = {v["version"]: v for v in style["versions"]}
    assert {"v1", "v2"} <= set(versions)
    assert (versions["v1"]["tenants"], versions["v2"]["tenants"]) == (["acme"], [])
    assert set(versions["v1"]) == {"version", "path", "created_at", "base_model", "eval", "tenants"}


def test_admin_reindex_takes_only_the_tenants_configured_folder(service: Service) -> None:
    headers = {"Authorization": "Bearer admin-key"}
    for elsewhere in (str(service.docs["globex"]), "/etc", str(service.docs["acme"].parent)):
        response = httpx.post(
            f"{service.url}/admin/reindex", json={"tenant": "acme", "docs": elsewhere}, headers=headers
        )
        assert response.status_code == 400
        message = response.json()["error"]["message"]
        assert "re-indexes only acme's configured docs folder" in message
    same = httpx.post(
        f"{service.url}/admin/reindex",
        json={"tenant": "acme", "docs": str(service.docs["acme"])},
        headers=headers,
        timeout=60,
    )
    assert same.status_code == 200
    own = {p.name for p in service.docs["acme"].iterdir()}
    hits = httpx.post(
        f"{service.url}/v1/retrieve",
        json={"query": "What warranty do you give?", "k": 20},
        headers={"Authorization": f"Bearer {KEYS['acme']}"},
    ).json()["hits"]
    assert {h["source"] for h in hits} <= own


def test_unused_path_is_a_json_404(service: Service, tmp_path: Path) -> None:
    response = httpx.get(f"{service.url}/v2/nothing")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


# A service whose /metrics needs RAGSERVE_METRICS_KEY.
metered = service_fixture("metered", metrics_key="metrics-key")


def test_metrics_are_refused_without_the_metrics_key_when_one_is_set(metered: Service) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {KEYS['acme']}"}):
        response = httpx.get(f"{metered.url}/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["error"]["type"] == "authentication_error"
    scraped = httpx.get(f"{metered.url}/metrics", headers={"Authorization": "Bearer metrics-key"})
    assert scraped.status_code == 200 and "ragserve_requests_total" in scraped.text


def test_metrics_label_requests_by_route_template_so_scanned_paths_add_no_series(metered: Service) -> None:
    for _ in range(100):
        assert httpx.get(f"{metered.url}/{uuid.uuid4().hex}").status_code == 404
    for tenant in KEYS:  # a wrong admin key: 401, and nothing changes
        url = f"{metered.url}/admin/tenants/{tenant}/adapter"
        assert httpx.put(url, json={"adapter": ""}, headers={"Authorization": "Bearer no"}).status_code == 401
    text = httpx.get(f"{metered.url}/metrics", headers={"Authorization": "Bearer metrics-key"}).text
    series = [line for line in text.splitlines() if line.startswith("ragserve_requests_total{")]
    routes = {line.split('route="')[1].split('"')[0] for line in series}
    # What the fixture and these tests asked for, by template; none of the 100 scanned paths.
    asked = {"/admin/tenants/{tenant}/adapter", "/admin/reindex", "/healthz", "/metrics"}
    assert routes <= {"<unmatched>", *asked}
    assert sum('route="<unmatched>",status="404"' in line for line in series) == 1
    assert sum('route="/admin/tenants/{tenant}/adapter",status="401"' in line for line in series) == 1
