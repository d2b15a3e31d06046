"""Which adapter version each tenant uses, in the state database, so it survives restarts."""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ragserve.errors import InvalidTenantError
from ragserve.state.database import Database
from ragserve.state.schema import adapter_assignments
from ragserve.state.tenants import now

__all__ = ["AssignmentStore"]


class AssignmentStore:
    """{tenant: "name@version"}; "" means the base model."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def read(self) -> dict[str, str]:
        with self._db.connect() as connection:
            rows = connection.execute(adapter_assignments.select()).all()
        return {row.tenant: row.ref for row in rows}

    def get(self, tenant: str) -> str | None:
        """The tenant's assignment; None when it has none (its configured adapter applies)."""
        table = adapter_assignments
        with self._db.connect() as connection:
            ref = connection.execute(select(table.c.ref).where(table.c.tenant == tenant)).scalar()
        return ref if ref is None else str(ref)

    def effective(self, configured: dict[str, str]) -> dict[str, str]:
        """Each tenant's adapter: its persisted assignment if it has one, else the config's."""
        persisted = self.read()
        return {tenant: persisted.get(tenant, ref) for tenant, ref in configured.items()}

    def set(self, tenant: str, ref: str) -> None:
        table = adapter_assignments
        with self._db.begin() as connection:
            connection.execute(table.delete().where(table.c.tenant == tenant))
            try:
                connection.execute(table.insert().values(tenant=tenant, ref=ref, updated_at=now()))
            except IntegrityError:  # the foreign key: no such tenant
                raise InvalidTenantError(f"unknown tenant {tenant!r}") from None
