"""Compaction (`POST /v1/responses/compact`): a conversation's turns other than the user's, summarised by the
model into one `compaction` item that stands for them in the next request's input.

The item's `encrypted_content` is the summary, sealed only so that it reads as one opaque token and is
recognised when it comes back: base64 of a versioned JSON object, not encryption, since it holds nothing
the client that sent the conversation did not already have. A summary sent back becomes a system turn
(`EARLIER` and the summary), which is no more than a client may say with a `developer` message.
"""

import base64
import binascii
import json
from typing import Any

__all__ = ["EARLIER", "NOW", "SUMMARISE", "sealed", "transcript", "unsealed"]

_VERSION = "ragserve-compaction-1"

SUMMARISE = (
    "Summarise the conversation below for whoever continues it: every fact, name, number, decision and "
    "open question, in a few short sentences. Write only the summary."
)
NOW = "Summarise the conversation above."
EARLIER = "The conversation before this point, summarised: "


def sealed(summary: str) -> str:
    return base64.b64encode(json.dumps({"v": _VERSION, "summary": summary}).encode()).decode()


def unsealed(content: str) -> str:
    """The summary a compaction holds; ValueError if ragserve did not make it."""
    try:
        data = json.loads(base64.b64decode(content, validate=True))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        data = None
    if not isinstance(data, dict) or data.get("v") != _VERSION or not isinstance(data.get("summary"), str):
        raise ValueError("a compaction's encrypted_content is not one this server made")
    summary: str = data["summary"]
    return summary


def transcript(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Chat messages as the turns the summary is made from: each one a user turn `role: text` (a function
    call as its name and arguments), then the request for the summary. One turn per message, so that a
    conversation longer than the model's context loses its oldest turns to the prompt's fitting, as a chat
    does, and is still summarised; a summary from an earlier compaction is a system turn, which stays."""
    turns = []
    for message in messages:
        text = str(message.get("content") or "")
        if message["role"] == "system":
            turns.append({"role": "system", "content": text})
            continue
        functions = [call["function"] for call in message.get("tool_calls") or []]
        calls = [f"called {f['name']}({f['arguments']})" for f in functions]
        turns.append({"role": "user", "content": f"{message['role']}: {' '.join([text, *calls]).strip()}"})
    return [*turns, {"role": "user", "content": NOW}]
