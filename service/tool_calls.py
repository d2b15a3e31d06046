"""A chat whose `tool_choice` is "required" or names a function ends in a tool call, in OpenAI's shape,
streamed or not; or in `finish_reason: "length"` when `max_tokens` cut the call short. Never in text, as if no
tool had been asked for: agent frameworks loop on the call, and text in its place reads as the answer.

What vLLM does that this mends: a call cut short, answered whole, comes back as the call's raw text in
`content` (`<tool_call>{"name": "get_weather", "`), since its tool parser finds no complete call. The client
gets what OpenAI sends instead: no content, the call as far as it got (its name, the arguments cut short), and
"length". Streamed, vLLM already sends the call's deltas; text deltas are dropped. A choice that finishes for
any other reason without a call is an error, never passed off as the answer.
"""

import re
import secrets
from typing import Any

from ragserve.errors import UpstreamError
from ragserve.service.schemas import ChatRequest

__all__ = ["StreamedCalls", "settle_tool_calls"]

_NO_CALL = "the model ended its answer without the tool call that tool_choice asks for"
_NAME = re.compile(r'"name"\s*:\s*"((?:[^"\\]|\\.)*)"')
_ARGUMENTS = re.compile(r'"(?:arguments|parameters)"\s*:\s*')


def settle_tool_calls(completion: dict[str, Any], body: ChatRequest) -> None:
    """A whole answer: each choice holds a tool call, or what there was of one and "length"."""
    if not body.must_call_tool:
        return
    for choice in completion.get("choices") or []:
        message = choice.setdefault("message", {})
        if message.get("tool_calls"):
            continue
        if choice.get("finish_reason") != "length":
            raise UpstreamError(_NO_CALL)
        text = str(message.get("content") or "")
        message["content"] = None
        message["tool_calls"] = _cut_call(text, _named(body))


class StreamedCalls:
    """Watches the chunks of a stream that must call a tool."""

    def __init__(self, body: ChatRequest) -> None:
        self._on = body.must_call_tool
        self._called: set[int] = set()

    def see(self, chunk: dict[str, Any]) -> None:
        """Drops a text delta; raises UpstreamError when a choice finishes, uncut, without a call."""
        if not self._on:
            return
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            index = int(choice.get("index") or 0)
            if delta.get("tool_calls"):
                self._called.add(index)
            if delta.get("content"):
                delta["content"] = None
            reason = choice.get("finish_reason")
            if reason and reason != "length" and index not in self._called:
                raise UpstreamError(_NO_CALL)


def _named(body: ChatRequest) -> str | None:
    choice = body.tool_choice
    if choice is None or isinstance(choice, str):
        return None
    function = (choice.model_extra or {}).get("function")
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) else None


def _cut_call(text: str, named: str | None) -> list[dict[str, Any]]:
    """The call in a cut-short tool-call text: its name (the named function's, else the one the text has got
    to), and its arguments as far as they got; none when not even the name was written."""
    found = _NAME.search(text)
    name = named or (found.group(1) if found else None)
    if name is None:
        return []
    arguments = _ARGUMENTS.search(text)
    return [
        {
            "id": f"chatcmpl-tool-{secrets.token_hex(8)}",
            "type": "function",
            "function": {"name": name, "arguments": text[arguments.end() :] if arguments else ""},
        }
    ]
