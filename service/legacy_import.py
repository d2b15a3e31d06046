"""A data dir from before the state database: its `assignments.json` and `feedback/<tenant>.jsonl` files are
imported on the first start, once, with nothing lost.

Each file is imported in full, recorded in `legacy_imports`, then moved aside (`assignments.json.imported`,
`feedback/imported/<tenant>.jsonl`), never deleted. A line that cannot be read (a torn last line, say) is
logged with its file and line number and stays in the moved file. A file of a tenant the database does not
know yet stays where it is and is imported at the first start that knows the tenant.
"""

import json
import logging
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import insert, select

from ragserve.adapters.assignments import AssignmentStore
from ragserve.errors import InvalidRequestError
from ragserve.service.feedback.record import FeedbackRecord
from ragserve.service.feedback.store import FeedbackStore
from ragserve.settings import Settings
from ragserve.state.database import Database
from ragserve.state.schema import legacy_imports
from ragserve.state.tenants import TenantStore, now

__all__ = ["import_legacy_files"]

log = logging.getLogger("ragserve.state")


def import_legacy_files(database: Database, settings: Settings, feedback: FeedbackStore) -> list[str]:
    """Imports what is there to import; returns a line for each file imported or left, for the log."""
    data_dir = settings.data_dir
    known = {row.name for row in TenantStore(database).all()}
    said: list[str] = []
    assignments = data_dir / "assignments.json"
    if assignments.is_file():
        said.append(_assignments(database, data_dir, assignments, known))
    folder = settings.feedback_dir
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        said.append(_feedback(database, data_dir, path, known, feedback))
    for line in said:
        log.warning("%s", line)
    return said


def _assignments(database: Database, data_dir: Path, path: Path, known: set[str]) -> str:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"{path}: not imported, unreadable: {exc}"
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        return f"{path}: not imported: expected an object of tenant to adapter"
    store = AssignmentStore(database)
    current = store.read()
    kept = {tenant: ref for tenant, ref in raw.items() if tenant in known}
    for tenant, ref in kept.items():
        if tenant not in current:  # one made since, through the database, is newer
            store.set(tenant, ref)
    left = sorted(set(raw) - set(kept))
    detail = f"{len(kept)} assignments" + (f"; left out, no such tenant: {', '.join(left)}" if left else "")
    _done(database, data_dir, path, detail, path.with_name(path.name + ".imported"))
    return f"{path}: imported {detail}"


def _feedback(database: Database, data_dir: Path, path: Path, known: set[str], store: FeedbackStore) -> str:
    tenant = path.stem
    if tenant not in known:
        return f"{path}: not imported yet: no tenant {tenant!r} (it is imported once the tenant exists)"
    imported = 0
    problems: list[str] = []
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            if not raw.strip():
                continue
            problem = _import_line(store, tenant, raw)
            if problem:
                problems.append(f"{path}:{number}: {problem}")
            else:
                imported += 1
    for problem in problems:
        log.warning("feedback line not imported (it stays in the moved file): %s", problem)
    detail = f"{imported} feedback records" + (f"; {len(problems)} lines unreadable" if problems else "")
    _done(database, data_dir, path, detail, path.parent / "imported" / path.name)
    return f"{path}: imported {detail}"


def _import_line(store: FeedbackStore, tenant: str, raw: bytes) -> str | None:
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return f"not UTF-8 (byte {exc.start})"
    except ValueError as exc:
        return f"not JSON ({exc})"
    try:
        record = FeedbackRecord.model_validate(data)
    except (ValidationError, InvalidRequestError) as exc:
        return f"not a feedback record: {str(exc).splitlines()[0]}"
    if record.tenant != tenant:
        return f"a record of tenant {record.tenant!r}, not {tenant!r}"
    size = len(json.dumps(data, ensure_ascii=False).encode("utf-8"))
    if not store.insert_stored(tenant, data, size):
        return f"id {record.id} is stored already"
    return None


def _done(database: Database, data_dir: Path, path: Path, detail: str, moved_to: Path) -> None:
    """Records the import, then moves the file aside. Importing again is harmless (a feedback id is stored
    once; an assignment made since is kept), so a crash before the move imports nothing twice."""
    name = str(path.relative_to(data_dir))
    with database.begin() as connection:
        seen = connection.execute(select(legacy_imports.c.path).where(legacy_imports.c.path == name)).first()
        if seen is None:
            connection.execute(insert(legacy_imports).values(path=name, imported_at=now(), detail=detail))
    moved_to.parent.mkdir(parents=True, exist_ok=True)
    path.rename(moved_to)
