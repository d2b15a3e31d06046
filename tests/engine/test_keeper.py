"""The keeper that every vLLM runs under: however what started it ends, the server is told to stop and takes
its own children with it. A stand-in server shows each path in a second; a real vLLM shows the one that used
to leave its engine core behind (a Ray worker SIGKILLing its own children)."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragserve.engine.process_table import group_members, processes
from ragserve.engine.vllm_process import VllmProcess, free_port
from tests.engine.stand_in import StandInSpec


def _alive(pid: int) -> bool:
    return any(p.pid == pid and not p.zombie for p in processes())


def _until_gone(pgid: int, timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while (left := group_members(pgid, running=True)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _worker(notes: Path) -> int:
    deadline = time.monotonic() + 20
    while not notes.exists() or not notes.read_text().startswith("worker"):
        assert time.monotonic() < deadline, "the stand-in did not start its worker"
        time.sleep(0.05)
    return int(notes.read_text().split()[1])


@pytest.fixture
def stand_in(tmp_path: Path) -> Iterator[tuple[VllmProcess, Path]]:
    notes = tmp_path / "notes"
    spec = StandInSpec(tmp_path, "stand-in", free_port(), 8, notes=notes)
    with VllmProcess(spec, tmp_path / "stand-in.log").running(timeout_s=30) as process:
        yield process, notes


def test_stop_ends_the_server_and_its_worker_with_the_servers_exit_code(
    stand_in: tuple[VllmProcess, Path],
) -> None:
    process, notes = stand_in
    assert process.pid is not None
    worker = _worker(notes)
    process.stop()
    assert process.returncode == 3  # the server's code, not the keeper's
    assert "stopped on SIGTERM" in notes.read_text()  # once: the keeper does not pass the group's signal on
    assert notes.read_text().count("stopped") == 1
    assert not _alive(worker) and group_members(process.pid, running=True) == []


def test_a_killed_keeper_still_stops_the_server_cleanly(stand_in: tuple[VllmProcess, Path]) -> None:
    """What a Ray worker does to its children when it exits: SIGKILL, to the keeper alone."""
    process, notes = stand_in
    assert process.pid is not None
    worker = _worker(notes)
    os.kill(process.pid, signal.SIGKILL)
    assert _until_gone(process.pid, 10) == []
    assert "stopped on SIGTERM" in notes.read_text() and not _alive(worker)


def test_a_server_killed_by_a_signal_shows_as_killed_by_it(stand_in: tuple[VllmProcess, Path]) -> None:
    process, notes = stand_in
    assert process.pid is not None
    server = next(
        pid for pid in group_members(process.pid, running=True) if pid not in (process.pid, _worker(notes))
    )
    os.kill(server, signal.SIGKILL)  # the OOM killer's way
    deadline = time.monotonic() + 10
    while process.returncode is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.returncode == -signal.SIGKILL  # what the supervisor logs, as when it ran without a keeper


def test_a_killed_parent_takes_the_server_with_it(tmp_path: Path) -> None:
    """The API SIGKILLed: the keeper hears of it from the kernel and stops the group."""
    notes, port = tmp_path / "notes", free_port()
    parent = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from ragserve.engine.vllm_process import VllmProcess
        from tests.engine.stand_in import StandInSpec
        spec = StandInSpec(Path({str(tmp_path)!r}), "stand-in", {port}, 8, notes=Path({str(notes)!r}))
        process = VllmProcess(spec, Path({str(tmp_path / "stand-in.log")!r}))
        process.start()
        process.wait_healthy(30)
        print(process.pid, flush=True)
        time.sleep(600)
    """)
    api = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    try:
        assert api.stdout is not None
        keeper = int(api.stdout.readline())
        worker = _worker(notes)
        api.kill()
        api.wait(10)
        assert _until_gone(keeper, 10) == []
    finally:
        if api.poll() is None:
            api.kill()
    assert "stopped on SIGTERM" in notes.read_text() and not _alive(worker)


def test_a_real_vllm_whose_keeper_is_killed_takes_its_engine_core_with_it(own_vllm: VllmProcess) -> None:
    process = own_vllm
    assert process.pid is not None
    members = group_members(process.pid, running=True)
    assert len(members) >= 3  # the keeper, vLLM's API server, its engine core
    os.kill(process.pid, signal.SIGKILL)
    left = _until_gone(process.pid, 90)
    assert left == []
    assert "[shutdown]" in process.log_path.read_text()  # vLLM shut down; it was not killed
