"""The tenants the service answers, live: from the state database, where ragserve.toml's tenants are written
at start and the admin API creates, changes and deletes them.

Each request's key is looked up in the database with its tenant's settings and adapter assignment
(state/tenants.py), and the settings are kept here for the rest of the request: a revoked key, a changed
setting or a new assignment (followed by the adapter switch, adapters/swap.py) counts from the next request
on, in every process that shares the database.
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ragserve.errors import (
    AuthError,
    ConfigError,
    InvalidRequestError,
    InvalidTenantError,
    validation_problems,
)
from ragserve.service.auth import bearer_token
from ragserve.service.config import ServeConfig, TenantSettings
from ragserve.state.tenants import IssuedKey, KeyInfo, TenantRow, TenantStore, key_sha256

__all__ = ["Tenant", "TenantDirectory"]

log = logging.getLogger("ragserve.service")

Listener = Callable[[str, "TenantSettings | None"], None]


class Tenant:
    """A tenant as the service sees it: its settings, and its docs folder on the server if it has one."""

    def __init__(self, row: TenantRow) -> None:
        self.name = row.name
        try:
            self.settings = TenantSettings.model_validate(row.settings)
        except ValidationError as exc:  # written by an older or newer ragserve, or by hand
            raise ConfigError(
                f"tenant {row.name}: stored settings are invalid: {validation_problems(exc)}"
            ) from None
        self.docs = Path(row.docs) if row.docs else None
        self.source = row.source
        self.assigned = row.assigned
        self.created_at = row.created_at
        self.updated_at = row.updated_at

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            **self.settings.model_dump(),
            "docs": str(self.docs) if self.docs else None,
            "source": self.source,
            "created_at": int(self.created_at.timestamp()),
            "updated_at": int(self.updated_at.timestamp()),
        }


class TenantDirectory:
    def __init__(self, store: TenantStore) -> None:
        self.store = store
        self._settings: dict[str, TenantSettings] = {}
        self._listeners: list[Listener] = []

    def on_change(self, listener: Listener) -> None:
        """Called with (name, settings) when a tenant is created or changed, (name, None) when deleted."""
        self._listeners.append(listener)

    # -- start --

    def sync_config(self, config: ServeConfig) -> None:
        """ragserve.toml's tenants are created, or updated to the file's settings, folder and key. A tenant
        the file no longer lists keeps its data (`ragserve tenants delete` erases it), but the key the file
        gave it is refused from now on."""
        listed = set(config.tenants)
        for name, tenant in config.tenants.items():
            settings = TenantSettings.of(tenant).model_dump()
            if self.store.get(name) is None:
                self.store.create(name, settings, str(tenant.docs), "config")
            else:
                self.store.update(name, settings, docs=str(tenant.docs))
            self.store.set_config_key(name, tenant.key_sha256(name))
        for row in self.store.all():
            if row.source == "config" and row.name not in listed:
                self.store.revoke_config_key(row.name)
                log.warning(
                    "tenant %s is no longer in the config file: its key from the file is refused", row.name
                )
            self._settings[row.name] = Tenant(row).settings

    # -- requests --

    async def authenticate(self, authorization: str | None) -> Tenant:
        """The tenant of the request's bearer key, with its settings and adapter assignment as the database
        holds them now; AuthError for a missing, unknown, revoked or expired key (one message for all three,
        so a key's state is not told to whoever holds it)."""
        key = bearer_token(authorization)
        if not key:
            raise AuthError("missing API key: send 'Authorization: Bearer <key>'")
        row = await asyncio.to_thread(self.store.tenant_for_key, key_sha256(key))
        if row is None:
            raise AuthError("unknown API key")
        tenant = Tenant(row)
        if self._settings.get(tenant.name) != tenant.settings:
            self._remember(tenant)
        return tenant

    def settings(self, name: str) -> TenantSettings:
        """An authenticated tenant's settings, as its key's lookup read them."""
        try:
            return self._settings[name]
        except KeyError:
            raise InvalidTenantError(f"unknown tenant {name!r}") from None

    def all_settings(self) -> dict[str, TenantSettings]:
        """Every tenant's settings as this process last read them."""
        return dict(self._settings)

    # -- the admin API --

    def get(self, name: str) -> Tenant:
        row = self.store.get(name)
        if row is None:
            raise InvalidTenantError(f"unknown tenant {name!r}")
        return Tenant(row)

    def all(self) -> list[Tenant]:
        return [Tenant(row) for row in self.store.all()]

    # These write the database (call them in a thread), then `remember` or `drop` tells this process, on
    # its event loop, where the listeners (the limiter, the adapter switch) live.

    def create(self, name: str, settings: TenantSettings) -> Tenant:
        return Tenant(self.store.create(name, settings.model_dump(), None, "api"))

    def update(self, name: str, changes: dict[str, Any]) -> Tenant:
        """Changes the named settings, keeps the others."""
        current = self.get(name)
        try:
            settings = TenantSettings.model_validate({**current.settings.model_dump(), **changes})
        except ValidationError as exc:
            raise InvalidRequestError(validation_problems(exc)) from None
        return Tenant(self.store.update(name, settings.model_dump()))

    def delete(self, name: str) -> None:
        """The tenant's row goes, and with it its keys, adapter assignment and feedback."""
        if not self.store.delete(name):
            raise InvalidTenantError(f"unknown tenant {name!r}")

    def remember(self, tenant: Tenant) -> None:
        self._remember(tenant)

    def drop(self, name: str) -> None:
        self._settings.pop(name, None)
        for listener in self._listeners:
            listener(name, None)

    def issue_key(self, name: str, key_name: str, expires_at: datetime | None) -> IssuedKey:
        self.get(name)
        return self.store.issue_key(name, key_name, expires_at)

    def keys(self, name: str) -> list[KeyInfo]:
        self.get(name)
        return self.store.keys(name)

    def revoke_key(self, name: str, key_id: str) -> KeyInfo:
        self.get(name)
        return self.store.revoke_key(name, key_id)

    def revoke_all_keys(self, name: str) -> None:
        self.store.revoke_all_keys(name)

    def _remember(self, tenant: Tenant) -> None:
        self._settings[tenant.name] = tenant.settings
        for listener in self._listeners:
            listener(tenant.name, tenant.settings)
