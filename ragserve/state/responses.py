"""The responses the Responses API keeps (`store`, on by default): each with the thread through it, so that
`previous_response_id` continues it, and the object as returned, for retrieval.

Every query names the tenant: another tenant's response is "not found", exactly as one that never existed.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select

from ragserve.errors import ResponseNotFoundError
from ragserve.state.database import Database
from ragserve.state.schema import responses
from ragserve.state.tenants import now

__all__ = ["ResponseStore", "StoredResponse"]


@dataclass(frozen=True)
class StoredResponse:
    id: str
    thread: list[dict[str, Any]]  # chat messages, this response's answer last
    body: dict[str, Any]


class ResponseStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    def add(self, tenant: str, response_id: str, thread: list[dict[str, Any]], body: dict[str, Any]) -> None:
        with self._db.begin() as connection:
            connection.execute(
                insert(responses).values(
                    id=response_id, tenant=tenant, created_at=now(), thread=thread, body=body
                )
            )

    def get(self, tenant: str, response_id: str) -> StoredResponse:
        query = select(responses).where(responses.c.tenant == tenant, responses.c.id == response_id)
        with self._db.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            raise ResponseNotFoundError(f"no response {response_id!r}")
        return StoredResponse(row.id, list(row.thread), dict(row.body))

    def delete(self, tenant: str, response_id: str) -> None:
        with self._db.begin() as connection:
            gone = connection.execute(
                delete(responses).where(responses.c.tenant == tenant, responses.c.id == response_id)
            ).rowcount
        if gone == 0:
            raise ResponseNotFoundError(f"no response {response_id!r}")
