"""A real PostgreSQL server for the tests, from Debian's `postgresql` package (`make setup` installs it):
started once per session on a loopback port, in a folder of its own; each test gets a database of its own."""

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from ragserve.engine.vllm_process import free_port

__all__ = ["PostgresServer", "postgres_server"]


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).parent
    raise RuntimeError("PostgreSQL's server is not installed: `make setup` installs Debian's postgresql")


@dataclass
class PostgresServer:
    port: int
    user: str

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        name = f"t_{secrets.token_hex(6)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """initdb, then the server on a free port, trusting loopback connections; stopped and removed after.
    PostgreSQL refuses to run as root: as root, it runs as the `postgres` user the package made, in a folder
    under /tmp (pytest's own are private to root)."""
    bin_dir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="ragserve-pg-"))
    data = root / "pgdata"
    as_user: list[str] = []
    user = "postgres"
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        root.chmod(0o777)
    else:
        user = os.environ.get("USER", "postgres")
    subprocess.run(
        [*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", user, "-A", "trust", "--no-sync"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    log = root / "postgres.log"
    ctl = [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data)]
    subprocess.run([*ctl, "-o", options, "-l", str(log), "-w", "start"], check=True, capture_output=True)
    try:
        yield PostgresServer(port, user)
    finally:
        subprocess.run([*ctl, "-m", "immediate", "stop"], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
