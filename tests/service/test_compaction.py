"""A compaction's sealed summary and the turns it is made from (the endpoint: test_responses_api.py)."""

import base64
from typing import Any

import pytest

from ragserve.service.compaction import NOW, sealed, transcript, unsealed


def test_a_sealed_summary_comes_back_and_anything_else_is_refused() -> None:
    summary = "Launch on Tuesday; tell support first."
    assert unsealed(sealed(summary)) == summary
    for forged in ("not base64!", base64.b64encode(b'{"summary": "mine"}').decode(), "", "e30="):
        with pytest.raises(ValueError, match="not one this server made"):
            unsealed(forged)


def test_each_message_is_a_turn_so_the_oldest_can_give_way_and_earlier_summaries_stay_system() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Earlier: the launch."},
        {"role": "user", "content": "Book it."},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c", "function": {"name": "book", "arguments": '{"day": "Tue"}'}}],
        },
        {"role": "tool", "tool_call_id": "c", "content": "booked"},
    ]
    assert transcript(messages) == [
        {"role": "system", "content": "Earlier: the launch."},
        {"role": "user", "content": "user: Book it."},
        {"role": "user", "content": 'assistant: called book({"day": "Tue"})'},
        {"role": "user", "content": "tool: booked"},
        {"role": "user", "content": NOW},
    ]
