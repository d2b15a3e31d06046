"""A running service notes its URL in the data dir, so the CLI can reach it while the store is locked."""

import json
import os
from pathlib import Path

from ragserve.files import write_atomically

__all__ = ["clear", "read", "record"]

_FILE = "service.json"


def record(data_dir: Path, url: str) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(data_dir / _FILE, json.dumps({"url": url, "pid": os.getpid()}))


def read(data_dir: Path) -> str | None:
    try:
        return str(json.loads((data_dir / _FILE).read_text())["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def clear(data_dir: Path) -> None:
    (data_dir / _FILE).unlink(missing_ok=True)
