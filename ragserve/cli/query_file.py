"""The `search --queries` input: one {"id", "query"} object per line."""

import json
from dataclasses import dataclass
from pathlib import Path

from ragserve.errors import QueryFileError

__all__ = ["QueryLine", "read_queries"]


@dataclass(frozen=True)
class QueryLine:
    id: str | int
    query: str


def read_queries(path: Path) -> list[QueryLine]:
    """Reads and checks every line before any search runs, naming the file and line of each problem."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise QueryFileError(f"{path}: cannot read: {exc}") from exc
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QueryFileError(f"{path}:{number}: not JSON: {exc.msg}") from exc
        if not isinstance(obj, dict) or not isinstance(obj.get("query"), str):
            raise QueryFileError(f'{path}:{number}: expected an object with a string "query"')
        ident = obj.get("id", number)
        if not isinstance(ident, (str, int)) or isinstance(ident, bool):
            raise QueryFileError(f'{path}:{number}: "id" must be a string or an integer')
        items.append(QueryLine(ident, obj["query"]))
    if not items:
        raise QueryFileError(f"{path}: no queries in the file")
    return items
