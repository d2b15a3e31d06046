"""A tenant's vector stores (OpenAI's name for a searchable set of files): each a named set of the tenant's
documents, with attributes per document that searches filter on, and the batches files were attached in.

Every query names the tenant: another tenant's store, file or batch is "not found", exactly as one that never
existed. A store holds documents, not chunks: what a search reads is the documents' chunks in the tenant's
one collection, filtered to the store's documents (service/vector_stores.py). A document being deleted has
left every store at once; its rows go with it (foreign keys, ON DELETE CASCADE).
"""

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, insert, select, update

from ragserve.errors import DocumentNotFoundError, VectorStoreNotFoundError
from ragserve.state.database import Database
from ragserve.state.documents import DocumentRow, document_row
from ragserve.state.schema import documents, vector_store_file_batches, vector_store_files, vector_stores
from ragserve.state.tenants import aware, now

__all__ = ["Attributes", "BatchRow", "StoreFileRow", "VectorStoreRow", "VectorStoreStore"]

Attributes = dict[str, str | float | bool]


@dataclass(frozen=True)
class VectorStoreRow:
    id: str
    tenant: str
    name: str
    metadata: dict[str, str]
    created_at: datetime
    last_active_at: datetime


@dataclass(frozen=True)
class StoreFileRow:
    """A document in a store, with the attributes it was attached with."""

    store_id: str
    document: DocumentRow
    attributes: Attributes
    created_at: datetime


@dataclass(frozen=True)
class BatchRow:
    id: str
    store_id: str
    document_ids: list[str]
    created_at: datetime
    cancelled_at: datetime | None


class VectorStoreStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    # -- stores --

    def create(
        self,
        tenant: str,
        name: str,
        metadata: dict[str, str],
        files: Sequence[tuple[str, Attributes]] = (),
    ) -> VectorStoreRow:
        """A new store holding `files` (document id, attributes): all of it, or nothing."""
        when = now()
        values = {
            "id": f"vs_{secrets.token_hex(12)}",
            "tenant": tenant,
            "name": name,
            "metadata": metadata,
            "created_at": when,
            "last_active_at": when,
        }
        with self._db.begin() as connection:
            connection.execute(insert(vector_stores).values(**values))
            if files:
                self._attach(connection, tenant, str(values["id"]), files)
        return _store_row(values)

    def get(self, tenant: str, store_id: str) -> VectorStoreRow:
        with self._db.connect() as connection:
            return self._get(connection, tenant, store_id)

    def all(self, tenant: str) -> list[VectorStoreRow]:
        query = select(vector_stores).where(vector_stores.c.tenant == tenant)
        with self._db.connect() as connection:
            rows = connection.execute(query.order_by(vector_stores.c.created_at, vector_stores.c.id)).all()
        return [_store_row(row._mapping) for row in rows]

    def update(
        self, tenant: str, store_id: str, name: str | None, metadata: dict[str, str] | None
    ) -> VectorStoreRow:
        values: dict[str, Any] = {"last_active_at": now()}
        if name is not None:
            values["name"] = name
        if metadata is not None:
            values["metadata"] = metadata
        with self._db.begin() as connection:
            self._get(connection, tenant, store_id)
            connection.execute(update(vector_stores).where(_store(tenant, store_id)).values(**values))
            return self._get(connection, tenant, store_id)

    def delete(self, tenant: str, store_id: str) -> None:
        """The store and what it says of its files; the files themselves stay."""
        with self._db.begin() as connection:
            if connection.execute(delete(vector_stores).where(_store(tenant, store_id))).rowcount == 0:
                raise _no_store(store_id)

    # -- its files --

    def attach(self, tenant: str, store_id: str, files: Sequence[tuple[str, Attributes]]) -> None:
        """Each (document id, attributes) into the store, all or none; a document already in it takes the
        new attributes. DocumentNotFoundError names the first id that is not one of the tenant's files."""
        with self._db.begin() as connection:
            self._get(connection, tenant, store_id)
            self._attach(connection, tenant, store_id, files)

    def _attach(
        self, connection: Connection, tenant: str, store_id: str, files: Sequence[tuple[str, Attributes]]
    ) -> None:
        when = now()
        ids = [document_id for document_id, _ in files]
        live = set(
            connection.execute(
                select(documents.c.id).where(
                    documents.c.tenant == tenant,
                    documents.c.id.in_(ids),
                    documents.c.status != "deleting",
                )
            ).scalars()
        )
        for document_id in ids:
            if document_id not in live:
                raise DocumentNotFoundError(f"no file {document_id!r}")
        connection.execute(
            delete(vector_store_files).where(
                vector_store_files.c.store_id == store_id, vector_store_files.c.document_id.in_(ids)
            )
        )
        connection.execute(
            insert(vector_store_files),
            [
                {
                    "store_id": store_id,
                    "document_id": document_id,
                    "tenant": tenant,
                    "attributes": attributes,
                    "created_at": when,
                }
                for document_id, attributes in dict(files).items()
            ],
        )
        self._touch(connection, tenant, store_id)

    def detach(self, tenant: str, store_id: str, document_ids: Sequence[str]) -> int:
        """How many of them were in the store."""
        with self._db.begin() as connection:
            self._get(connection, tenant, store_id)
            removed = connection.execute(
                delete(vector_store_files).where(
                    vector_store_files.c.tenant == tenant,
                    vector_store_files.c.store_id == store_id,
                    vector_store_files.c.document_id.in_(document_ids),
                )
            ).rowcount
            self._touch(connection, tenant, store_id)
            return int(removed)

    def set_attributes(self, tenant: str, store_id: str, document_id: str, attributes: Attributes) -> None:
        with self._db.begin() as connection:
            changed = connection.execute(
                update(vector_store_files)
                .where(
                    vector_store_files.c.tenant == tenant,
                    vector_store_files.c.store_id == store_id,
                    vector_store_files.c.document_id == document_id,
                )
                .values(attributes=attributes)
            ).rowcount
        if changed == 0:
            self.get(tenant, store_id)
            raise DocumentNotFoundError(f"no file {document_id!r} in vector store {store_id!r}")

    def files(
        self, tenant: str, store_ids: Sequence[str], document_id: str | None = None
    ) -> list[StoreFileRow]:
        """The live documents in these stores of the tenant's (each store's checked), oldest first; only
        `document_id` if given."""
        query = (
            select(
                documents,
                vector_store_files.c.store_id,
                vector_store_files.c.attributes,
                vector_store_files.c.created_at.label("attached_at"),
            )
            .select_from(vector_store_files)
            .join(documents, documents.c.id == vector_store_files.c.document_id)
            .where(
                vector_store_files.c.tenant == tenant,
                documents.c.tenant == tenant,
                vector_store_files.c.store_id.in_(store_ids),
                documents.c.status != "deleting",
            )
            .order_by(vector_store_files.c.created_at, vector_store_files.c.document_id)
        )
        if document_id is not None:
            query = query.where(vector_store_files.c.document_id == document_id)
        with self._db.connect() as connection:
            for store_id in store_ids:
                self._get(connection, tenant, store_id)
            rows = connection.execute(query).all()
        return [
            StoreFileRow(
                store_id=row.store_id,
                document=document_row(row._mapping),
                attributes=dict(row.attributes),
                created_at=aware(row.attached_at),
            )
            for row in rows
        ]

    def file(self, tenant: str, store_id: str, document_id: str) -> StoreFileRow:
        found = self.files(tenant, [store_id], document_id)
        if found:
            return found[0]
        raise DocumentNotFoundError(f"no file {document_id!r} in vector store {store_id!r}")

    # -- batches --

    def create_batch(self, tenant: str, store_id: str, files: Sequence[tuple[str, Attributes]]) -> BatchRow:
        """The files attached, and the batch that names them, in one transaction."""
        values = {
            "id": f"vsfb_{secrets.token_hex(12)}",
            "store_id": store_id,
            "tenant": tenant,
            "document_ids": list(dict(files)),
            "created_at": now(),
            "cancelled_at": None,
        }
        with self._db.begin() as connection:
            self._get(connection, tenant, store_id)
            self._attach(connection, tenant, store_id, files)
            connection.execute(insert(vector_store_file_batches).values(**values))
        return _batch_row(values)

    def batch(self, tenant: str, store_id: str, batch_id: str) -> BatchRow:
        query = select(vector_store_file_batches).where(
            vector_store_file_batches.c.tenant == tenant,
            vector_store_file_batches.c.store_id == store_id,
            vector_store_file_batches.c.id == batch_id,
        )
        with self._db.connect() as connection:
            self._get(connection, tenant, store_id)
            row = connection.execute(query).first()
        if row is None:
            raise VectorStoreNotFoundError(f"no file batch {batch_id!r} in vector store {store_id!r}")
        return _batch_row(row._mapping)

    def cancel_batch(self, tenant: str, store_id: str, batch_id: str, unfinished: Sequence[str]) -> BatchRow:
        """Marks the batch cancelled and takes its `unfinished` documents out of the store."""
        batch = self.batch(tenant, store_id, batch_id)
        self.detach(tenant, store_id, [i for i in unfinished if i in batch.document_ids])
        with self._db.begin() as connection:
            connection.execute(
                update(vector_store_file_batches)
                .where(
                    vector_store_file_batches.c.id == batch.id, vector_store_file_batches.c.tenant == tenant
                )
                .values(cancelled_at=now())
            )
        return self.batch(tenant, store_id, batch_id)

    # -- helpers --

    def _get(self, connection: Connection, tenant: str, store_id: str) -> VectorStoreRow:
        row = connection.execute(select(vector_stores).where(_store(tenant, store_id))).first()
        if row is None:
            raise _no_store(store_id)
        return _store_row(row._mapping)

    def _touch(self, connection: Connection, tenant: str, store_id: str) -> None:
        connection.execute(update(vector_stores).where(_store(tenant, store_id)).values(last_active_at=now()))


def _store(tenant: str, store_id: str) -> Any:
    return (vector_stores.c.tenant == tenant) & (vector_stores.c.id == store_id)


def _no_store(store_id: str) -> VectorStoreNotFoundError:
    return VectorStoreNotFoundError(f"no vector store {store_id!r}")


def _store_row(row: RowMapping | dict[str, Any]) -> VectorStoreRow:
    return VectorStoreRow(
        id=row["id"],
        tenant=row["tenant"],
        name=row["name"],
        metadata=dict(row["metadata"]),
        created_at=aware(row["created_at"]),
        last_active_at=aware(row["last_active_at"]),
    )


def _batch_row(row: RowMapping | dict[str, Any]) -> BatchRow:
    cancelled = row["cancelled_at"]
    return BatchRow(
        id=row["id"],
        store_id=row["store_id"],
        document_ids=list(row["document_ids"]),
        created_at=aware(row["created_at"]),
        cancelled_at=aware(cancelled) if cancelled is not None else None,
    )
