"""Stored responses on SQLite and a real PostgreSQL: each tenant's are capped in bytes, the oldest deleted to
make room for the newest, and another tenant's are untouched and not found."""

from typing import Any

import pytest

from ragserve.errors import ResponseNotFoundError
from ragserve.state.database import Database
from ragserve.state.responses import NewResponse, ResponseStore
from ragserve.state.tenants import TenantStore

THREAD: list[dict[str, Any]] = [
    {"role": "user", "content": "x" * 400},
    {"role": "assistant", "content": "y" * 400},
]
INPUT = [{"type": "message", "id": "msg_1", "role": "user", "content": [{"type": "input_text", "text": "x"}]}]


def _new(response_id: str, thread: list[dict[str, Any]] = THREAD) -> NewResponse:
    return NewResponse(response_id, thread, INPUT, {"id": response_id})


def test_past_the_cap_the_oldest_responses_make_room_for_the_newest(database: Database) -> None:
    tenants = TenantStore(database)
    for name in ("acme", "globex"):
        tenants.create(name, {}, None, "api")
    store = ResponseStore(database, max_bytes=3000)  # room for three of these (about 950 bytes each)
    store.add("globex", _new("resp_g"))
    for i in range(6):
        store.add("acme", _new(f"resp_{i}"))
    for gone in ("resp_0", "resp_1", "resp_2"):
        with pytest.raises(ResponseNotFoundError):
            store.get("acme", gone)
    assert [store.get("acme", f"resp_{i}").body["id"] for i in (3, 4, 5)] == ["resp_3", "resp_4", "resp_5"]
    kept = store.get("globex", "resp_g")
    assert (kept.thread, kept.input) == (THREAD, INPUT)  # another tenant's share is its own
    with pytest.raises(ResponseNotFoundError):
        store.get("acme", "resp_g")
    big = ResponseStore(database, max_bytes=1024)
    big.add("acme", _new("resp_big", [{"role": "user", "content": "z" * 5000}]))
    assert big.get("acme", "resp_big").thread  # one over the cap alone is kept: it is the newest
    with pytest.raises(ResponseNotFoundError):
        big.get("acme", "resp_5")
