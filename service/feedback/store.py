"""Each tenant's feedback, in the state database: one row a record, in the order they arrived.

The cap (RAGSERVE_FEEDBACK_MAX_BYTES) is each tenant's own, counted in the records' JSON bytes; the check
and the insert run in one transaction that first locks the tenant's row (PostgreSQL; SQLite runs one writer at
a time), so concurrent appends cannot together pass it. A record answered 201 is committed.
"""

import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from ragserve.errors import FeedbackFullError, FeedbackNotFoundError, InvalidRequestError, InvalidTenantError
from ragserve.ingest.tenancy import check_tenant
from ragserve.service.feedback.record import FeedbackRecord, FeedbackRequest
from ragserve.settings import Settings
from ragserve.state.database import Database
from ragserve.state.schema import feedback, tenants

__all__ = ["FeedbackStore", "StoredFeedback"]


@dataclass
class StoredFeedback:
    source: str  # where the records were read: the database, without its password
    records: list[FeedbackRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # stored records this version cannot read, "id: why"


class FeedbackStore:
    def __init__(self, database: Database, max_bytes: int) -> None:
        self._db = database
        self.max_bytes = max_bytes

    @classmethod
    def of(cls, settings: Settings) -> "FeedbackStore":
        """The settings' database (migrated), and their cap."""
        return cls(Database.of(settings), settings.feedback_max_bytes)

    def tenants(self) -> list[str]:
        """The tenants that have feedback stored."""
        with self._db.connect() as connection:
            rows = connection.execute(select(feedback.c.tenant).distinct().order_by(feedback.c.tenant)).all()
        return [row.tenant for row in rows]

    def append(self, tenant: str, body: FeedbackRequest) -> FeedbackRecord:
        """Stores the body as a new record of the tenant's, with a fresh id; FeedbackFullError at the cap."""
        created = datetime.now(UTC)
        data = {
            "id": f"fb-{secrets.token_hex(12)}",
            "created_at": created.isoformat(timespec="milliseconds"),
            "tenant": tenant,
            **body.model_dump(),
        }
        record = FeedbackRecord.model_validate(data)
        size = len(json.dumps(data, ensure_ascii=False).encode("utf-8"))
        try:
            with self._db.begin() as connection:
                connection.execute(select(tenants.c.name).where(tenants.c.name == tenant).with_for_update())
                used = connection.execute(
                    select(func.coalesce(func.sum(feedback.c.size), 0)).where(feedback.c.tenant == tenant)
                ).scalar_one()
                if used + size > self.max_bytes:
                    raise FeedbackFullError(
                        f"tenant {tenant}'s feedback store is full ({used:,} bytes; "
                        f"RAGSERVE_FEEDBACK_MAX_BYTES is {self.max_bytes:,}): no more feedback is taken "
                        "until an operator exports it and clears it (`ragserve feedback export --clear`)"
                    )
                connection.execute(
                    insert(feedback).values(
                        id=record.id, tenant=tenant, created_at=created, size=size, record=data
                    )
                )
        except IntegrityError:
            raise InvalidTenantError(f"unknown tenant {tenant!r}") from None
        return record

    def insert_stored(self, tenant: str, data: dict[str, object], size: int) -> bool:
        """A record stored before (a feedback file of an older data dir), as it was; False if its id is
        taken."""
        record = FeedbackRecord.model_validate(data)
        try:
            with self._db.begin() as connection:
                connection.execute(
                    insert(feedback).values(
                        id=record.id, tenant=tenant, created_at=datetime.now(UTC), size=size, record=data
                    )
                )
        except IntegrityError:
            return False
        return True

    def read(self, tenant: str) -> StoredFeedback:
        """Every record of the tenant's, oldest first; a stored record that no longer validates is listed."""
        check_tenant(tenant)
        with self._db.connect() as connection:
            rows = connection.execute(
                select(feedback.c.id, feedback.c.record)
                .where(feedback.c.tenant == tenant)
                .order_by(feedback.c.seq)
            ).all()
        if not rows:
            others = ", ".join(self.tenants()) or "none"
            raise FeedbackNotFoundError(
                f"no feedback for tenant {tenant!r} in {self._db.describe()} "
                f"(tenants with feedback: {others})"
            )
        stored = StoredFeedback(self._db.describe())
        for row in rows:
            try:
                stored.records.append(FeedbackRecord.model_validate(row.record))
            except (ValidationError, InvalidRequestError) as exc:
                stored.skipped.append(f"{row.id}: {str(exc).splitlines()[0]}")
        return stored

    def clear(self, tenant: str, ids: list[str]) -> int:
        """Deletes these records of the tenant's (those an export wrote out); how many."""
        with self._db.begin() as connection:
            done = connection.execute(
                delete(feedback).where(feedback.c.tenant == tenant, feedback.c.id.in_(ids))
            )
        return done.rowcount
