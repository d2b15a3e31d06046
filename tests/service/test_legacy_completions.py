"""The legacy /v1/completions, through the unchanged openai SDK and LlamaIndex's OpenAILike default, against
the real service and vLLM: answered down the chat path, with the same citations."""

from typing import Any

import httpx
import pytest

from tests.service.conftest import KEYS, Service
from tests.support.chat import bearer, openai_client, sse_data

QUESTION = "How long does the Roadrunner battery last?"


def _post(service: Service, body: dict[str, Any], key: str = KEYS["acme"]) -> httpx.Response:
    return httpx.post(f"{service.url}/v1/completions", json=body, headers=bearer(key), timeout=120)


def test_the_openai_sdk_gets_a_text_completion_with_citations(service: Service) -> None:
    client = openai_client(service.url, KEYS["acme"])
    completion = client.completions.create(model="default", prompt=QUESTION, max_tokens=40)
    assert completion.object == "text_completion"
    assert completion.id.startswith("cmpl-")
    assert completion.choices[0].text.strip()
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    extra = completion.model_extra or {}
    assert extra["citations"][0]["source"] == "battery.md"
    assert "support" in extra["grounding"]


def test_the_openai_sdk_streams_text_and_the_last_chunk_carries_the_citations(service: Service) -> None:
    client = openai_client(service.url, KEYS["acme"])
    chunks = list(
        client.completions.create(
            model="default",
            prompt=QUESTION,
            max_tokens=40,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.object == "text_completion" for c in chunks)
    assert "".join(c.choices[0].text for c in chunks if c.choices).strip()
    carried = [(c.model_extra or {}).get("citations") for c in chunks]
    assert [c for c in carried if c][-1][0]["source"] == "battery.md"
    assert chunks[-1].usage is not None and chunks[-1].choices == []


def test_the_answer_is_the_chat_answer(service: Service) -> None:
    """Same question, greedy: the legacy shape carries the very text and citations chat gives."""
    fields = {"model": "default", "max_tokens": 30, "temperature": 0, "seed": 1}
    chat = httpx.post(
        f"{service.url}/v1/chat/completions",
        json={**fields, "messages": [{"role": "user", "content": QUESTION}]},
        headers=bearer(KEYS["acme"]),
        timeout=120,
    ).json()
    legacy = _post(service, {**fields, "prompt": QUESTION}).json()
    assert legacy["choices"][0]["text"] == chat["choices"][0]["message"]["content"]
    assert [c["source"] for c in legacy["citations"]] == [c["source"] for c in chat["citations"]]


def test_a_tenant_gets_its_own_documents(service: Service) -> None:
    answer = _post(service, {"model": "default", "prompt": QUESTION, "max_tokens": 20}, KEYS["globex"])
    assert answer.status_code == 200, answer.text
    assert all(c["source"] != "battery.md" for c in answer.json()["citations"])


def test_logprobs_come_in_the_legacy_shape(service: Service) -> None:
    body = {"model": "default", "prompt": QUESTION, "max_tokens": 5, "logprobs": 2, "rag": False}
    choice = _post(service, body).json()["choices"][0]
    logprobs = choice["logprobs"]
    assert len(logprobs["tokens"]) == len(logprobs["token_logprobs"]) == len(logprobs["text_offset"])
    assert all(len(top) <= 2 for top in logprobs["top_logprobs"])
    assert "".join(logprobs["tokens"]) == choice["text"]


def test_llamaindex_openai_like_completes_by_default(service: Service) -> None:
    from llama_index.llms.openai_like import OpenAILike

    llm = OpenAILike(  # is_chat_model is False by default: complete() calls /v1/completions
        model="default", api_base=f"{service.url}/v1", api_key=KEYS["acme"], max_tokens=40
    )
    assert llm.complete(QUESTION).text.strip()
    assert "".join(r.delta or "" for r in llm.stream_complete(QUESTION)).strip()


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"echo": True}, "echo"),
        ({"suffix": "after"}, "suffix"),
        ({"best_of": 3}, "best_of"),
        ({"prompt": ["one", "two"]}, "one prompt per request"),
        ({"prompt": [1, 2, 3]}, "token ids"),
        ({"prompt": None}, "prompt"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "messages"),
        ({"tools": []}, "tools"),
        ({"logprobs": 21}, "logprobs"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
    ],
)
def test_what_it_does_not_support_is_a_400_naming_it(
    service: Service, change: dict[str, Any], names: str
) -> None:
    response = _post(service, {"model": "default", "prompt": QUESTION, **change})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert names in error["message"], error
    assert error["type"] == "invalid_request_error"


def test_no_key_is_a_401_and_a_stream_ends_with_done(service: Service) -> None:
    assert _post(service, {"prompt": QUESTION}, key="").status_code == 401
    body = {"model": "default", "prompt": QUESTION, "max_tokens": 10, "stream": True}
    with httpx.stream(
        "POST", f"{service.url}/v1/completions", json=body, headers=bearer(KEYS["acme"]), timeout=120
    ) as response:
        assert response.status_code == 200
        data = list(sse_data(response.iter_lines()))
    assert data[-1] == "[DONE]"
