"""The OpenAI contract, as clients rely on it, against the real vLLM: field errors are 400 naming the field,
what vLLM supports is passed on, streams end the way the SDK's loops expect."""

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from pydantic import BaseModel

from tests.service.conftest import KEYS, Service
from tests.support.chat import openai_client, post_chat, sse_events, stream_chat

QUESTION: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "How long does the Roadrunner battery last?"}
]


def _client(service: Service) -> openai.OpenAI:
    return openai_client(service.url, KEYS["acme"])


def _post(service: Service, body: dict[str, Any] | None = None, raw: bytes | None = None) -> httpx.Response:
    return post_chat(service.url, KEYS["acme"], body, raw)


def _error(response: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    return error


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"temperature": 5}, "temperature"),
        ({"top_k": -2}, "top_k"),
        ({"min_p": 1.5}, "min_p"),
        ({"repetition_penalty": 0}, "repetition_penalty"),
        ({"seed": 2**64}, "seed"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"n": 0}, "n"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"logit_bias": {"hello": 5}}, "logit_bias"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"tenant": "globex"}, "tenant"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
         "messages.0.content"),
        ({"messages": [{"role": "tool", "content": "42"}, *QUESTION]}, "messages.0"),
    ],
)  # fmt: skip
def test_a_bad_field_is_400_naming_it(service: Service, extra: dict[str, Any], param: str) -> None:
    error = _error(_post(service, {"messages": QUESTION, "max_tokens": 5, **extra}))
    assert error["param"] == param, error


def test_the_sdk_raises_bad_request_for_a_field_error(service: Service) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _client(service).chat.completions.create(model="default", messages=QUESTION, temperature=9)
    assert caught.value.param == "temperature"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"messages": [{"role": "user", "content": "battery \\ud800 life"}]}',
        b'{"messages": [{"role": "user", "content": "battery \xff\xfe life"}]}',
        b'{"messages": [{"role": "user", "content": "ok"}], "user": "\\udfff"}',
    ],
)
def test_invalid_unicode_is_400(service: Service, raw: bytes) -> None:
    _error(_post(service, raw=raw))


def test_vllms_own_refusal_is_the_clients_400_streamed_or_not(service: Service) -> None:
    body = {"messages": QUESTION, "max_tokens": 5, "min_tokens": 10}
    for stream in (False, True):
        error = _error(_post(service, {**body, "stream": stream}))
        assert "min_tokens" in error["message"] or "max_tokens" in error["message"], error


def test_a_prompt_or_answer_too_long_for_the_context_is_context_length_exceeded(service: Service) -> None:
    long_prompt = _error(_post(service, {"messages": [{"role": "user", "content": "word " * 5000}]}))
    assert (long_prompt["code"], long_prompt["param"]) == ("context_length_exceeded", "messages")
    long_answer = _error(_post(service, {"messages": QUESTION, "max_tokens": 4000}))
    assert (long_answer["code"], long_answer["param"]) == ("context_length_exceeded", "max_tokens")


def test_n_logprobs_and_logit_bias_reach_vllm(service: Service, base_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    token = AutoTokenizer.from_pretrained(str(base_model_dir)).encode(" banana")[0]
    completion = _client(service).chat.completions.create(
        model="default",
        messages=QUESTION,
        max_tokens=3,
        n=2,
        temperature=1.0,
        logprobs=True,
        top_logprobs=2,
        logit_bias={str(token): 100},
    )
    assert len(completion.choices) == 2
    for choice in completion.choices:
        assert choice.logprobs is not None and choice.logprobs.content
        assert len(choice.logprobs.content[0].top_logprobs) == 2
        assert (choice.message.content or "").split() == ["banana"] * 3


class Answer(BaseModel):
    hours: int
    product: str


def test_response_format_json_schema_through_the_sdks_parse(service: Service) -> None:
    completion = _client(service).chat.completions.parse(
        model="default",
        messages=QUESTION,
        response_format=Answer,
        max_tokens=60,
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Answer)


def test_response_format_json_object_answers_json(service: Service) -> None:
    body = {"messages": QUESTION, "max_tokens": 60, "response_format": {"type": "json_object"}}
    answer = _post(service, body).json()
    json.loads(answer["choices"][0]["message"]["content"])


WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "battery_hours",
        "description": "Look up the battery life of a product.",
        "parameters": {
            "type": "object",
            "properties": {"product": {"type": "string", "maxLength": 20}},
            "required": ["product"],
        },
    },
}


def test_tools_reach_vllm_and_a_tool_turn_follows_a_tool_call(service: Service) -> None:
    client = _client(service)
    named = client.chat.completions.create(
        model="default",
        messages=QUESTION,
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "battery_hours"}},
        max_tokens=30,
    )
    # vLLM constrained the answer to a call of that tool (the 135M model fills its arguments poorly, and
    # 30 tokens may cut it: then it is the call as far as it got, and "length").
    message = named.choices[0].message
    assert message.tool_calls and message.tool_calls[0].model_dump()["function"]["name"] == "battery_hours"
    # "auto", what LangChain's bind_tools sends: the bundled model answers in text, and that is passed on.
    auto = client.chat.completions.create(model="default", messages=QUESTION, tools=[WEATHER], max_tokens=20)
    assert auto.choices[0].message.content or auto.choices[0].message.tool_calls
    # A conversation that went through a tool call: the assistant's call, then the tool's answer.
    call = {"id": "call_1", "type": "function", "function": {"name": "battery_hours", "arguments": "{}"}}
    turns: list[Any] = [
        *QUESTION,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "The R2 runs 14 hours."},
    ]
    followed = client.chat.completions.create(model="default", messages=turns, max_tokens=20)
    assert followed.choices[0].message.content


@pytest.mark.parametrize("max_tokens", [24, 60])
@pytest.mark.parametrize(
    "choice",
    ["required", {"type": "function", "function": {"name": "battery_hours"}}],
    ids=["required", "named"],
)
def test_a_tool_choice_that_asks_for_a_call_ends_in_one_or_in_length_never_in_text(
    service: Service, choice: Any, max_tokens: int
) -> None:
    """What agent frameworks rely on, through the official SDK, answered whole and streamed."""
    client = _client(service)
    asked: dict[str, Any] = {
        "model": "default",
        "messages": QUESTION,
        "tools": [WEATHER],
        "tool_choice": choice,
    }
    whole = client.chat.completions.create(**asked, max_tokens=max_tokens).choices[0]
    assert not whole.message.content, whole
    assert whole.finish_reason == "length" or whole.message.tool_calls, whole
    assert all(call.function.name == "battery_hours" for call in whole.message.tool_calls or []), whole

    text, names, finish = "", [], None
    for chunk in client.chat.completions.create(**asked, max_tokens=max_tokens, stream=True):
        for streamed in chunk.choices:
            text += streamed.delta.content or ""
            names += [
                c.function.name for c in streamed.delta.tool_calls or [] if c.function and c.function.name
            ]
            finish = streamed.finish_reason or finish
    assert not text
    assert finish == "length" or names == ["battery_hours"], (finish, names)


def test_content_parts_are_kept_apart(service: Service) -> None:
    parts = [{"type": "text", "text": "Battery life of"}, {"type": "text", "text": "the Roadrunner?"}]
    answer = _post(service, {"messages": [{"role": "user", "content": parts}], "max_tokens": 20}).json()
    assert answer["citations"][0]["source"] == "battery.md"


def _events(service: Service, body: dict[str, Any]) -> list[dict[str, Any]]:
    with stream_chat(service.url, KEYS["acme"], body) as response:
        return sse_events(response)


def test_a_stream_has_a_choice_in_every_chunk_and_citations_on_the_last(service: Service) -> None:
    chunks = _events(service, {"messages": QUESTION, "max_tokens": 20})
    assert all(chunk["choices"] for chunk in chunks)
    assert "citations" in chunks[-1] and all("citations" not in c for c in chunks[:-1])
    assert chunks[-1]["choices"][0]["finish_reason"]
    assert all("usage" not in c or c["usage"] is None for c in chunks)
    # The SDK's common loop.
    stream = _client(service).chat.completions.create(
        model="default",
        messages=QUESTION,
        max_tokens=20,
        stream=True,
    )
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream)


def test_usage_comes_in_a_last_chunk_without_choices_only_when_asked(service: Service) -> None:
    body = {"messages": QUESTION, "max_tokens": 20, "stream_options": {"include_usage": True}}
    chunks = _events(service, body)
    *answer, usage = chunks
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] > 0
    assert all(c["choices"] for c in answer) and "citations" in answer[-1]


def test_per_tenant_cache_salt_is_sent_to_vllm(service: Service) -> None:
    from ragserve.service.vllm_request import cache_salt

    assert cache_salt("acme") != cache_salt("globex")
    assert len(cache_salt("acme")) <= 128
    # vLLM took it: the answers above came through it; here, both tenants once more.
    for tenant in KEYS:
        response = httpx.post(
            f"{service.url}/v1/chat/completions",
            json={"messages": QUESTION, "max_tokens": 5},
            headers={"Authorization": f"Bearer {KEYS[tenant]}"},
            timeout=120,
        )
        assert response.status_code == 200, response.text
