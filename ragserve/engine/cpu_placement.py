"""Keeps the API off the cores that vLLM's CPU backend computes on.

vLLM on CPU binds its model's OpenMP threads to cores and leaves at least one core free for "other
processes" (its own front end, and ours). Left to the scheduler, the API lands on the compute cores too, and
every request it handles pre-empts the model: on 2 cores, a burst of 8 requests took about 4% longer to
prefill through the service than sent to vLLM directly. On the free core the two took the same time.
"""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ragserve.engine.process_table import group_members
from ragserve.errors import ConfigError
from ragserve.hardware import parse_cpu_list

__all__ = ["api_cpus", "bound_cpus", "own_cpus", "pin_process", "starting_on"]

_PROC = Path("/proc")


def _available() -> bool:
    return hasattr(os, "sched_getaffinity") and _PROC.is_dir()


def bound_cpus(pgid: int) -> set[int]:
    """The CPUs that threads of process group pgid are bound to: those allowed fewer CPUs than we are."""
    if not _available():
        return set()
    ours = os.sched_getaffinity(0)
    bound: set[int] = set()
    for pid in group_members(pgid):
        try:
            threads = [int(t.name) for t in (_PROC / str(pid) / "task").iterdir()]
        except OSError:
            continue
        for tid in threads:
            try:
                allowed = os.sched_getaffinity(tid)
            except OSError:
                continue
            if allowed < ours:
                bound |= allowed
    return bound


def api_cpus(setting: str, vllm_pgid: int | None) -> set[int]:
    """Where the API should run: "all" or an empty result leave it to the scheduler; "auto" takes the cores
    the vLLM that ragserve started has left free; a CPU list is taken as given."""
    if setting == "all" or not _available():
        return set()
    if setting != "auto":
        cpus = parse_cpu_list(setting)
        if not cpus <= os.sched_getaffinity(0):
            raise ConfigError(f"RAGSERVE_API_CPUS={setting}: this process may only run on "
                              f"{sorted(os.sched_getaffinity(0))}")  # fmt: skip
        return cpus
    if vllm_pgid is None:
        return set()  # an outside vLLM: where it computes is not ours to know
    bound = bound_cpus(vllm_pgid)
    return os.sched_getaffinity(0) - bound if bound else set()


def pin_process(cpus: set[int]) -> None:
    """Moves every thread of this process onto cpus; threads made later inherit it. Sizes torch's pool."""
    for task in (_PROC / "self" / "task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except OSError:
            continue  # a thread that has just ended
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(len(cpus))


def own_cpus() -> set[int] | None:
    """The CPUs this thread may run on now; None where that cannot be read."""
    return set(os.sched_getaffinity(0)) if _available() else None


@contextmanager
def starting_on(cpus: set[int] | None) -> Iterator[None]:
    """This thread runs on cpus for the block, so a process it starts there inherits them, then goes back.

    The API pins itself off vLLM's cores once vLLM runs; a vLLM started again from the API (after it died)
    would otherwise inherit the API's CPUs and bind its model's threads there."""
    before = own_cpus()
    if cpus is None or before is None or before == cpus:
        yield
        return
    try:
        os.sched_setaffinity(0, cpus)  # pid 0: the calling thread only, on Linux
    except OSError:  # some of them were taken away since: start where this thread may run
        yield
        return
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
