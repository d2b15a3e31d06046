"""A chat that must call a tool, on vLLM's answers as recorded from the real server (the same requests end to
end: test_openai_contract.py)."""

from typing import Any

import pytest

from ragserve.errors import UpstreamError
from ragserve.service.schemas import ChatRequest
from ragserve.service.tool_calls import StreamedCalls, settle_tool_calls

TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
# vLLM's answer to `tool_choice: "required"` cut at 24 tokens: the call's raw text, and "length".
CUT = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Par'


def _request(choice: Any) -> ChatRequest:
    return ChatRequest.model_validate(
        {
            "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "tools": [TOOL],
            "tool_choice": choice,
        }
    )


def _answer(content: str, finish: str, calls: list[Any] | None = None) -> dict[str, Any]:
    message = {"role": "assistant", "content": content, **({"tool_calls": calls} if calls else {})}
    return {"choices": [{"index": 0, "message": message, "finish_reason": finish}]}


def test_a_call_cut_short_is_the_call_as_far_as_it_got_and_length_not_text() -> None:
    completion = _answer(CUT, "length")
    settle_tool_calls(completion, _request("required"))
    [choice] = completion["choices"]
    assert choice["finish_reason"] == "length" and choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Par'}


def test_a_named_call_cut_before_its_name_still_names_the_function() -> None:
    completion = _answer("<tool_call>\n{", "length")
    settle_tool_calls(completion, _request({"type": "function", "function": {"name": "get_weather"}}))
    [call] = completion["choices"][0]["message"]["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": ""}


def test_a_required_call_cut_before_its_name_has_no_call_and_no_text() -> None:
    completion = _answer("<tool_call>\n{", "length")
    settle_tool_calls(completion, _request("required"))
    message = completion["choices"][0]["message"]
    assert message["content"] is None and message["tool_calls"] == []


def test_an_answer_that_ends_without_a_call_is_an_error_not_text() -> None:
    with pytest.raises(UpstreamError, match="without the tool call"):
        settle_tool_calls(_answer("It is sunny.", "stop"), _request("required"))


def test_a_whole_call_and_a_chat_that_may_answer_in_text_are_left_as_they_are() -> None:
    call = [{"id": "1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]
    whole = _answer("", "tool_calls", call)
    settle_tool_calls(whole, _request("required"))
    assert whole == _answer("", "tool_calls", call)
    text = _answer("It is sunny.", "stop")
    settle_tool_calls(text, _request("auto"))
    assert text == _answer("It is sunny.", "stop")


def test_a_stream_drops_text_and_fails_a_choice_that_finishes_without_a_call() -> None:
    watch = StreamedCalls(_request("required"))
    chunk: dict[str, Any] = {"choices": [{"index": 0, "delta": {"content": "Sunny"}, "finish_reason": None}]}
    watch.see(chunk)
    assert chunk["choices"][0]["delta"]["content"] is None
    watch.see({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})  # cut: fine
    with pytest.raises(UpstreamError):
        watch.see({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    called = StreamedCalls(_request("required"))
    called.see({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0}]}, "finish_reason": None}]})
    called.see({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
