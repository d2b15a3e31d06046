"""Tenants and their API keys. A key is stored as its sha256 only; the key itself is shown once, when issued.

A request's key is looked up here every time, with its tenant's settings in the same query: a revoked or
expired key is refused at the next request on every process that shares the database, and a changed setting
reaches every process the same way.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import RowMapping, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ragserve.errors import ConflictError, InvalidTenantError
from ragserve.state.database import Database
from ragserve.state.schema import adapter_assignments, api_keys, tenants

__all__ = ["IssuedKey", "KeyInfo", "TenantRow", "TenantStore", "aware", "key_sha256", "now"]

KEY_PREFIX = "rsk-"


def now() -> datetime:
    return datetime.now(UTC)


def key_sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class TenantRow:
    name: str
    settings: dict[str, Any]
    docs: str | None
    source: str  # "config" or "api"
    created_at: datetime
    updated_at: datetime
    assigned: str | None = None
    """Its adapter assignment, read with its key ("" for the base model); None: none, or not read."""


@dataclass(frozen=True)
class KeyInfo:
    """What the admin API lists of a key: never the key, nor its hash."""

    id: str
    tenant: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant": self.tenant,
            "name": self.name,
            "created_at": _stamp(self.created_at),
            "expires_at": _stamp(self.expires_at),
            "revoked_at": _stamp(self.revoked_at),
        }


@dataclass(frozen=True)
class IssuedKey:
    info: KeyInfo
    key: str  # shown once

    def to_json(self) -> dict[str, Any]:
        """What the answer to issuing it shows, this once: its info and the key itself."""
        return {**self.info.to_json(), "key": self.key}


def _stamp(when: datetime | None) -> int | None:
    return int(aware(when).timestamp()) if when is not None else None


def aware(when: datetime) -> datetime:
    """SQLite hands back naive datetimes: every time stored here is UTC."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


class TenantStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    # -- tenants --

    def get(self, name: str) -> TenantRow | None:
        with self._db.connect() as connection:
            row = connection.execute(select(tenants).where(tenants.c.name == name)).first()
        return _tenant(row._mapping) if row is not None else None

    def all(self) -> list[TenantRow]:
        with self._db.connect() as connection:
            rows = connection.execute(select(tenants).order_by(tenants.c.name)).all()
        return [_tenant(row._mapping) for row in rows]

    def create(self, name: str, settings: dict[str, Any], docs: str | None, source: str) -> TenantRow:
        when = now()
        values = {"name": name, "settings": settings, "docs": docs, "source": source}
        try:
            with self._db.begin() as connection:
                connection.execute(insert(tenants).values(**values, created_at=when, updated_at=when))
        except IntegrityError:
            raise ConflictError(f"tenant {name!r} exists already") from None
        return TenantRow(name, settings, docs, source, when, when)

    def update(self, name: str, settings: dict[str, Any], docs: str | None = None) -> TenantRow:
        """Replaces the tenant's settings (and its docs folder, when given)."""
        values: dict[str, Any] = {"settings": settings, "updated_at": now()}
        if docs is not None:
            values["docs"] = docs
        with self._db.begin() as connection:
            done = connection.execute(update(tenants).where(tenants.c.name == name).values(**values))
        if done.rowcount == 0:
            raise InvalidTenantError(f"unknown tenant {name!r}")
        row = self.get(name)
        assert row is not None
        return row

    def delete(self, name: str) -> bool:
        """Deletes the tenant's row, and with it (ON DELETE CASCADE) its keys, assignment and feedback."""
        with self._db.begin() as connection:
            done = connection.execute(delete(tenants).where(tenants.c.name == name))
        return done.rowcount > 0

    # -- keys --

    def issue_key(self, tenant: str, name: str = "", expires_at: datetime | None = None) -> IssuedKey:
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        when = expires_at.astimezone(UTC) if expires_at is not None else None  # stored as UTC
        info = self._insert_key(tenant, f"key_{secrets.token_hex(8)}", key_sha256(key), name, when)
        return IssuedKey(info, key)

    def set_config_key(self, tenant: str, sha256: str) -> None:
        """The key that ragserve.toml gives a tenant, kept under one id per tenant: changed in the file,
        changed here, and the old one refused."""
        key_id = f"config_{tenant}"
        with self._db.begin() as connection:
            current = connection.execute(select(api_keys.c.sha256).where(api_keys.c.id == key_id)).first()
            if current is not None and current.sha256 == sha256:
                connection.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=None))
                return
            connection.execute(delete(api_keys).where(api_keys.c.id == key_id))
            owner = connection.execute(select(api_keys.c.tenant).where(api_keys.c.sha256 == sha256)).first()
            if owner is not None:
                raise ConflictError(f"tenant {tenant}'s key in the config file is already a key of a tenant")
            connection.execute(
                insert(api_keys).values(
                    id=key_id, tenant=tenant, sha256=sha256, name="ragserve.toml", created_at=now()
                )
            )

    def revoke_config_key(self, tenant: str) -> None:
        with self._db.begin() as connection:
            connection.execute(
                update(api_keys)
                .where(api_keys.c.id == f"config_{tenant}", api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now())
            )

    def keys(self, tenant: str) -> list[KeyInfo]:
        with self._db.connect() as connection:
            rows = connection.execute(
                select(api_keys).where(api_keys.c.tenant == tenant).order_by(api_keys.c.created_at)
            ).all()
        return [_key(row._mapping) for row in rows]

    def revoke_key(self, tenant: str, key_id: str) -> KeyInfo:
        """Refused from the next request on; unknown ids, and another tenant's, are both "no such key"."""
        with self._db.begin() as connection:
            connection.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.tenant == tenant, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now())
            )
            row = connection.execute(
                select(api_keys).where(api_keys.c.id == key_id, api_keys.c.tenant == tenant)
            ).first()
        if row is None:
            raise InvalidTenantError(f"tenant {tenant!r} has no key {key_id!r}")
        return _key(row._mapping)

    def revoke_all_keys(self, tenant: str) -> None:
        with self._db.begin() as connection:
            connection.execute(
                update(api_keys)
                .where(api_keys.c.tenant == tenant, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now())
            )

    def tenant_for_key(self, sha256: str) -> TenantRow | None:
        """The tenant of a live key (not revoked, not expired), with its settings and adapter assignment;
        None for any other."""
        query = (
            select(tenants, adapter_assignments.c.ref.label("assigned"))
            .join(api_keys, api_keys.c.tenant == tenants.c.name)
            .outerjoin(adapter_assignments, adapter_assignments.c.tenant == tenants.c.name)
            .where(
                api_keys.c.sha256 == sha256,
                api_keys.c.revoked_at.is_(None),
                (api_keys.c.expires_at.is_(None)) | (api_keys.c.expires_at > now()),
            )
        )
        with self._db.connect() as connection:
            row = connection.execute(query).first()
        return _tenant(row._mapping) if row is not None else None

    def _insert_key(
        self, tenant: str, key_id: str, sha256: str, name: str, expires_at: datetime | None
    ) -> KeyInfo:
        when = now()
        try:
            with self._db.begin() as connection:
                connection.execute(
                    insert(api_keys).values(
                        id=key_id,
                        tenant=tenant,
                        sha256=sha256,
                        name=name,
                        created_at=when,
                        expires_at=expires_at,
                    )
                )
        except IntegrityError:
            raise InvalidTenantError(f"unknown tenant {tenant!r}") from None
        return KeyInfo(key_id, tenant, name, when, expires_at, None)


def _tenant(row: RowMapping) -> TenantRow:
    return TenantRow(
        row["name"],
        dict(row["settings"]),
        row["docs"],
        row["source"],
        aware(row["created_at"]),
        aware(row["updated_at"]),
        row.get("assigned"),
    )


def _key(row: RowMapping) -> KeyInfo:
    return KeyInfo(
        row["id"],
        row["tenant"],
        row["name"],
        aware(row["created_at"]),
        aware(row["expires_at"]) if row["expires_at"] is not None else None,
        aware(row["revoked_at"]) if row["revoked_at"] is not None else None,
    )
