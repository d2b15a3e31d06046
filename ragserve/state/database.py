"""The state database: opened from a URL, migrated to the newest schema at start, one engine per process.

SQLite (the embedded default, `<data dir>/state.db`) runs in WAL mode with foreign keys on, so a reader never
waits for a writer and deleting a tenant cascades as it does on PostgreSQL. Migrations take a lock first: a
PostgreSQL advisory lock, or a flock beside the SQLite file, so two processes starting at once migrate once.
"""

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

from ragserve.errors import ConfigError, StateUnavailableError
from ragserve.settings import Settings
from ragserve.state.schema import metadata

__all__ = ["Database"]

log = logging.getLogger("ragserve.state")

_MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_ID = 0x7261_6773  # "rags": the advisory lock that migrations hold on PostgreSQL


class Database:
    """One engine for the process. `connect()` and `begin()` give connections that report failures of the
    database as StateUnavailableError (HTTP 503), never as a driver's traceback."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ConfigError(f"RAGSERVE_DATABASE_URL: not a database URL: {exc}") from None
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, the maintained driver
        self.url = parsed
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if not self.is_sqlite and parsed.get_backend_name() != "postgresql":
            raise ConfigError(f"RAGSERVE_DATABASE_URL: {parsed.get_backend_name()} is not supported: "
                              "use sqlite:///PATH or postgresql://USER@HOST/DB")  # fmt: skip
        options: dict[str, Any] = {"pool_pre_ping": True}
        if self.is_sqlite:
            options["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            options["connect_args"] = {"connect_timeout": 10}
        self.engine: Engine = create_engine(parsed, **options)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)

    @classmethod
    def of(cls, settings: Settings) -> "Database":
        """The settings' database, migrated to the newest schema."""
        database = cls(settings.state_url)
        database.migrate()
        return database

    def describe(self) -> str:
        """The URL without its password, for messages and logs."""
        return self.url.render_as_string(hide_password=True)

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        with self._translated(), self.engine.connect() as connection:
            yield connection

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        with self._translated(), self.engine.begin() as connection:
            yield connection

    def migrate(self) -> None:
        """Brings the schema to the newest migration (a no-op when it is there already)."""
        if self.is_sqlite and self.url.database:
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
        with self._migration_lock(), self.begin() as connection:
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @staticmethod
    def newest_revision() -> str | None:
        """The revision `migrate` brings a database to."""
        return ScriptDirectory.from_config(_alembic_config()).get_current_head()

    def purge(self) -> None:
        """After an erasure: what was deleted leaves the files too. SQLite copies the write-ahead log into the
        database (where secure_delete zeroed the rows) and empties it; PostgreSQL vacuums the tables, so the
        dead rows' space is reclaimed rather than left for autovacuum."""
        if self.is_sqlite:
            with self.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            return
        with self._translated(), self.engine.connect() as connection:
            autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")  # VACUUM needs it
            for table in metadata.sorted_tables:
                autocommit.exec_driver_sql(f"VACUUM {table.name}")

    def dispose(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[None]:
        if self.is_sqlite:
            if not self.url.database:  # in memory: one process only
                yield
                return
            lock = Path(f"{self.url.database}.migrate.lock")
            with lock.open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                yield
            return
        with self.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _LOCK_ID})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _LOCK_ID})

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            log.warning("state database %s failed: %s", self.describe(), exc)
            raise StateUnavailableError(
                f"the state database ({self.describe()}) cannot be reached: {str(exc.orig)[:200]}"
            ) from exc


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA secure_delete=ON")  # a deleted row's bytes are overwritten, not left in free pages
    cursor.execute("PRAGMA synchronous=FULL")  # a commit answered 2xx has reached the disk
    cursor.close()


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config
