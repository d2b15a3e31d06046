"""The state database on SQLite and on a real PostgreSQL: the migrations build the schema the code describes,
keys are stored as hashes and refused once revoked or expired, and deleting a tenant takes what it owns."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text

from ragserve.adapters.assignments import AssignmentStore
from ragserve.errors import ConflictError, InvalidTenantError
from ragserve.state.database import Database
from ragserve.state.schema import api_keys, metadata
from ragserve.state.tenants import TenantStore, key_sha256


def test_the_migrations_build_the_schema_the_code_describes(database: Database) -> None:
    with database.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


def test_migrating_again_and_from_two_threads_at_once_is_harmless(database: Database) -> None:
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            Database(database.url.render_as_string(hide_password=False)).migrate()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with database.connect() as connection:
        assert (
            connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            == Database.newest_revision()
        )


def test_a_key_is_stored_as_its_hash_and_shown_once(database: Database) -> None:
    store = TenantStore(database)
    store.create("acme", {"k": 4}, None, "api")
    issued = store.issue_key("acme", "web app")
    with database.connect() as connection:
        stored = connection.execute(select(api_keys)).one()
    assert issued.key.startswith("rsk-") and issued.key not in str(stored)
    assert stored.sha256 == key_sha256(issued.key)
    row = store.tenant_for_key(key_sha256(issued.key))
    assert row is not None and row.name == "acme" and row.settings == {"k": 4}
    assert "key" not in issued.info.to_json() and [k.name for k in store.keys("acme")] == ["web app"]


def test_a_revoked_or_expired_key_finds_no_tenant_and_the_others_still_do(database: Database) -> None:
    store = TenantStore(database)
    store.create("acme", {}, None, "api")
    old, new = store.issue_key("acme", "old"), store.issue_key("acme", "new")
    soon = store.issue_key("acme", "soon", datetime.now(UTC) + timedelta(hours=1))
    gone = store.issue_key("acme", "gone", datetime.now(UTC) - timedelta(seconds=1))
    assert store.revoke_key("acme", old.info.id).revoked_at is not None
    assert store.tenant_for_key(key_sha256(old.key)) is None
    assert store.tenant_for_key(key_sha256(gone.key)) is None
    assert store.tenant_for_key(key_sha256(new.key)) is not None
    assert store.tenant_for_key(key_sha256(soon.key)) is not None


def test_another_tenants_key_id_is_no_such_key(database: Database) -> None:
    store = TenantStore(database)
    store.create("acme", {}, None, "api")
    store.create("globex", {}, None, "api")
    theirs = store.issue_key("globex")
    with pytest.raises(InvalidTenantError, match="tenant 'acme' has no key"):
        store.revoke_key("acme", theirs.info.id)
    assert store.tenant_for_key(key_sha256(theirs.key)) is not None


def test_a_tenant_name_is_taken_once(database: Database) -> None:
    store = TenantStore(database)
    store.create("acme", {}, None, "api")
    with pytest.raises(ConflictError, match="tenant 'acme' exists already"):
        store.create("acme", {}, None, "api")


def test_the_config_key_changes_with_the_file_and_the_old_one_is_refused(database: Database) -> None:
    store = TenantStore(database)
    store.create("acme", {}, "/docs", "config")
    store.set_config_key("acme", key_sha256("first"))
    store.set_config_key("acme", key_sha256("second"))
    assert store.tenant_for_key(key_sha256("first")) is None
    assert store.tenant_for_key(key_sha256("second")) is not None
    store.revoke_config_key("acme")
    assert store.tenant_for_key(key_sha256("second")) is None
    store.set_config_key("acme", key_sha256("second"))  # back in the file
    assert store.tenant_for_key(key_sha256("second")) is not None


def test_deleting_a_tenant_deletes_its_keys_and_assignment(database: Database) -> None:
    store = TenantStore(database)
    store.create("acme", {}, None, "api")
    store.create("globex", {}, None, "api")
    key = store.issue_key("acme")
    assignments = AssignmentStore(database)
    assignments.set("acme", "style@v1")
    assignments.set("globex", "")
    assert store.delete("acme")
    assert store.tenant_for_key(key_sha256(key.key)) is None
    assert assignments.read() == {"globex": ""}
    with database.connect() as connection:
        assert connection.execute(select(api_keys)).all() == []
    with pytest.raises(InvalidTenantError):
        assignments.set("acme", "style@v1")
