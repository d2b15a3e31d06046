"""The responses the Responses API keeps (`store`, on by default): each with the thread through it, so that
`previous_response_id` continues it, its input items, and the object as returned, for retrieval.

Every query names the tenant: another tenant's response is "not found", exactly as one that never existed.
A tenant's stored responses are capped in bytes (RAGSERVE_RESPONSES_MAX_BYTES): storing one past the cap
deletes the tenant's oldest until it fits, in the same transaction, so a thread older than what the cap holds
can no longer be continued (404), and no tenant can fill the database.
"""

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from ragserve.errors import ResponseNotFoundError
from ragserve.state.database import Database
from ragserve.state.schema import responses
from ragserve.state.tenants import now

__all__ = ["NewResponse", "ResponseStore", "StoredResponse"]


@dataclass(frozen=True)
class StoredResponse:
    id: str
    thread: list[dict[str, Any]]  # chat messages, this response's answer last
    body: dict[str, Any]
    input: list[dict[str, Any]]  # the request's input items, with their ids


@dataclass(frozen=True)
class NewResponse:
    """A response to keep: `thread` for previous_response_id, `input` for its input items, `body` as sent."""

    id: str
    thread: list[dict[str, Any]]
    input: list[dict[str, Any]]
    body: dict[str, Any]


class ResponseStore:
    def __init__(self, database: Database, max_bytes: int) -> None:
        self._db = database
        self.max_bytes = max_bytes

    def add(self, tenant: str, new: NewResponse) -> None:
        size = len(json.dumps([new.thread, new.input, new.body]).encode())
        with self._db.begin() as connection:
            connection.execute(
                insert(responses).values(
                    id=new.id,
                    tenant=tenant,
                    created_at=now(),
                    thread=new.thread,
                    input=new.input,
                    body=new.body,
                    size=size,
                )
            )
            self._prune(connection, tenant, keep=new.id)

    def get(self, tenant: str, response_id: str) -> StoredResponse:
        query = select(responses).where(responses.c.tenant == tenant, responses.c.id == response_id)
        with self._db.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            raise ResponseNotFoundError(f"no response {response_id!r}")
        return StoredResponse(row.id, list(row.thread), dict(row.body), list(row.input))

    def delete(self, tenant: str, response_id: str) -> None:
        with self._db.begin() as connection:
            gone = connection.execute(
                delete(responses).where(responses.c.tenant == tenant, responses.c.id == response_id)
            ).rowcount
        if gone == 0:
            raise ResponseNotFoundError(f"no response {response_id!r}")

    def _prune(self, connection: Connection, tenant: str, keep: str) -> None:
        """The tenant's oldest responses deleted until the rest fit the cap; never `keep`, the newest."""
        mine = responses.c.tenant == tenant
        total = connection.execute(
            select(func.coalesce(func.sum(responses.c.size), 0)).where(mine)
        ).scalar_one()
        if total <= self.max_bytes:
            return
        oldest = connection.execute(
            select(responses.c.id, responses.c.size)
            .where(mine, responses.c.id != keep)
            .order_by(responses.c.created_at, responses.c.id)
        ).all()
        doomed = []
        for row in oldest:
            if total <= self.max_bytes:
                break
            doomed.append(row.id)
            total -= row.size
        connection.execute(delete(responses).where(mine, responses.c.id.in_(doomed)))
