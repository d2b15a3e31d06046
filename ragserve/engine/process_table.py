"""The machine's processes as Linux's /proc lists them: who started whom, and which process group each is in.
vLLM runs in a process group of its own (its keeper, its server, its engine core and workers), so the group is
how ragserve finds its threads' cores, and how a test sees that none of it is left."""

from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import NamedTuple

__all__ = ["Proc", "group_members", "processes"]

_PROC = Path("/proc")


class Proc(NamedTuple):
    pid: int
    parent: int
    group: int
    zombie: bool  # exited, not yet waited for by its parent


def processes() -> Iterator[Proc]:
    """Every process this user may read; none where there is no /proc."""
    if not _PROC.is_dir():
        return
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError, IndexError, ValueError):  # gone meanwhile, or not ours to read
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            yield Proc(int(entry.name), int(fields[1]), int(fields[2]), fields[0] == "Z")


def group_members(pgid: int, *, running: bool = False) -> list[int]:
    """The processes of process group pgid; `running`: without those that have exited (zombies)."""
    return [p.pid for p in processes() if p.group == pgid and not (running and p.zombie)]
