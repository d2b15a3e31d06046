"""The documents a tenant uploaded over HTTP, and where each one's indexing stands.

Every query names the tenant: another tenant's document is "not found", exactly as one that never existed.
The same bytes uploaded twice by one tenant are one document (a unique key on tenant and sha256), so
concurrent uploads of a file index it once.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, RowMapping, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ragserve.errors import DocumentNotFoundError
from ragserve.state.database import Database
from ragserve.state.schema import documents
from ragserve.state.tenants import aware, now

__all__ = ["PURPOSES", "DocumentRow", "DocumentStore", "Purpose", "Status", "document_row"]

Status = Literal["in_progress", "completed", "failed", "deleting"]
Purpose = Literal["assistants", "user_data"]
PURPOSES: tuple[Purpose, ...] = ("assistants", "user_data")
_LIVE = documents.c.status != "deleting"  # a document being deleted is gone for every reader


@dataclass(frozen=True)
class DocumentRow:
    id: str
    tenant: str
    filename: str
    format: str
    sha256: str
    bytes: int
    status: Status
    error: str | None
    chunks: int
    created_at: datetime
    updated_at: datetime
    purpose: Purpose = "assistants"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "document",
            "filename": self.filename,
            "format": self.format,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "status": self.status,
            "error": self.error,
            "chunks": self.chunks,
            "created_at": int(self.created_at.timestamp()),
            "updated_at": int(self.updated_at.timestamp()),
        }


class DocumentStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    def add(
        self, tenant: str, filename: str, fmt: str, sha256: str, size: int, purpose: Purpose = "assistants"
    ) -> tuple[DocumentRow, bool]:
        """A new document, `in_progress`; or the tenant's document with these bytes already (its purpose the
        first upload's). True if new."""
        when = now()
        values = {
            "id": f"doc_{secrets.token_hex(12)}",
            "tenant": tenant,
            "filename": filename,
            "format": fmt,
            "sha256": sha256,
            "bytes": size,
            "status": "in_progress",
            "error": None,
            "chunks": 0,
            "created_at": when,
            "updated_at": when,
            "purpose": purpose,
        }
        try:
            with self._db.begin() as connection:
                connection.execute(insert(documents).values(**values))
        except IntegrityError:
            existing = self._by_hash(tenant, sha256)
            if existing is None:  # deleted in between: the caller may upload again
                raise DocumentNotFoundError("the same file is being deleted; upload it again") from None
            return existing, False
        return document_row(values), True

    def get(self, tenant: str, document_id: str, kind: str = "document") -> DocumentRow:
        """The tenant's document (not one being deleted); DocumentNotFoundError for any other id. `kind`: what
        the caller calls it (a "file" in the Files API)."""
        found = self._live_one(tenant, documents.c.id == document_id)
        if found is None:
            raise DocumentNotFoundError(f"no {kind} {document_id!r}")
        return found

    def all(self, tenant: str, *, deleting: bool = False) -> list[DocumentRow]:
        query = select(documents).where(documents.c.tenant == tenant)
        if not deleting:
            query = query.where(_LIVE)
        with self._db.connect() as connection:
            rows = connection.execute(query.order_by(documents.c.created_at, documents.c.id)).all()
        return [document_row(row._mapping) for row in rows]

    def tenants_with_work(self) -> list[str]:
        """Tenants with a document waiting to be indexed or removed: after a restart, their runs resume."""
        query = (
            select(documents.c.tenant).where(documents.c.status.in_(["in_progress", "deleting"])).distinct()
        )
        with self._db.connect() as connection:
            return sorted(row.tenant for row in connection.execute(query).all())

    def mark_deleting(self, tenant: str, document_id: str, kind: str = "document") -> DocumentRow:
        found = self.get(tenant, document_id, kind)
        self._set(tenant, document_id, status="deleting")
        return found

    def finish(self, tenant: str, document_id: str, status: Status, error: str | None, chunks: int) -> None:
        self._set(tenant, document_id, status=status, error=error, chunks=chunks)

    def remove(self, tenant: str, document_ids: list[str]) -> None:
        if document_ids:
            with self._db.begin() as connection:
                connection.execute(
                    delete(documents).where(documents.c.tenant == tenant, documents.c.id.in_(document_ids))
                )

    def _set(self, tenant: str, document_id: str, **values: Any) -> None:
        with self._db.begin() as connection:
            connection.execute(
                update(documents)
                .where(documents.c.tenant == tenant, documents.c.id == document_id)
                .values(**values, updated_at=now())
            )

    def _by_hash(self, tenant: str, sha256: str) -> DocumentRow | None:
        return self._live_one(tenant, documents.c.sha256 == sha256)

    def _live_one(self, tenant: str, condition: ColumnElement[bool]) -> DocumentRow | None:
        """The tenant's live document that meets the condition, if any."""
        with self._db.connect() as connection:
            row = connection.execute(
                select(documents).where(documents.c.tenant == tenant, condition, _LIVE)
            ).first()
        return document_row(row._mapping) if row is not None else None


def document_row(row: RowMapping | dict[str, Any]) -> DocumentRow:
    return DocumentRow(
        id=row["id"],
        tenant=row["tenant"],
        filename=row["filename"],
        format=row["format"],
        sha256=row["sha256"],
        bytes=row["bytes"],
        status=row["status"],
        error=row["error"],
        chunks=row["chunks"],
        created_at=aware(row["created_at"]),
        updated_at=aware(row["updated_at"]),
        purpose=row["purpose"],
    )
