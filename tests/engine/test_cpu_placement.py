"""Where the API runs: off the cores vLLM's CPU backend binds its compute threads to."""

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from ragserve.engine.cpu_placement import api_cpus, bound_cpus, own_cpus, starting_on
from ragserve.engine.vllm_process import VllmProcess
from ragserve.errors import ConfigError
from ragserve.hardware import parse_cpu_list
from ragserve.settings import Settings

OURS = os.sched_getaffinity(0)
needs_two_cpus = pytest.mark.skipif(len(OURS) < 2, reason="binding needs a second CPU to leave free")


def test_cpu_lists_parse_in_the_kernels_notation() -> None:
    assert parse_cpu_list("1,3-5") == {1, 3, 4, 5}
    assert parse_cpu_list("0") == {0}
    for bad in ("", "a", "3-1", "1,,2", "1-", "-1"):
        with pytest.raises(ValueError, match="not a CPU list"):
            parse_cpu_list(bad)


def test_the_setting_takes_auto_all_or_a_cpu_list() -> None:
    for good in ("auto", "all", "0", "0-1,3"):
        assert Settings(api_cpus=good).api_cpus == good
    with pytest.raises(ValidationError, match="not a CPU list"):
        Settings(api_cpus="some")


def test_a_cpu_list_outside_this_process_is_refused() -> None:
    with pytest.raises(ConfigError, match="may only run on"):
        api_cpus(str(max(OURS) + 1), None)
    assert api_cpus(str(min(OURS)), None) == {min(OURS)}


@pytest.fixture
def pinned_group() -> Iterator[int]:
    """A process in its own group with one thread bound to our first CPU, as vLLM binds its OpenMP threads."""
    code = (
        "import os, threading, time\n"
        f"t = threading.Thread(target=lambda: (os.sched_setaffinity(0, {{{min(OURS)}}}), time.sleep(60)))\n"
        "t.start(); print('ready', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 10
    while not bound_cpus(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    yield proc.pid
    proc.kill()
    proc.wait()


@needs_two_cpus
def test_auto_takes_the_cpus_the_group_left_free(pinned_group: int) -> None:
    assert bound_cpus(pinned_group) == {min(OURS)}
    assert api_cpus("auto", pinned_group) == OURS - {min(OURS)}
    assert api_cpus("all", pinned_group) == set()  # left to the scheduler
    assert api_cpus("auto", None) == set()  # an outside vLLM: nothing known, nothing pinned


def test_a_group_that_binds_nothing_leaves_the_api_where_it_is() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        assert bound_cpus(proc.pid) == set()
        assert api_cpus("auto", proc.pid) == set()
    finally:
        proc.kill()
        proc.wait()


@needs_two_cpus
def test_vllm_on_cpu_binds_its_compute_threads_and_leaves_a_cpu_free(vllm: VllmProcess) -> None:
    assert vllm.pid is not None
    bound = bound_cpus(vllm.pid)
    assert bound and bound < OURS
    assert api_cpus("auto", vllm.pid) == OURS - bound


def test_pinning_moves_every_thread_and_sizes_torchs_pool() -> None:
    code = (
        "import json, os, threading, time, torch\n"
        "from ragserve.engine.cpu_placement import pin_process\n"
        "threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n"
        f"pin_process({{{min(OURS)}}})\n"
        "tasks = os.listdir('/proc/self/task')\n"
        "cpus = sorted({tuple(sorted(os.sched_getaffinity(int(t)))) for t in tasks})\n"
        "print(json.dumps({'threads': len(tasks), 'cpus': cpus, 'torch': torch.get_num_threads()}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    seen = json.loads(out)
    assert seen["threads"] >= 2
    assert seen["cpus"] == [[min(OURS)]]
    assert seen["torch"] == 1


@needs_two_cpus
def test_a_process_started_from_a_pinned_thread_gets_the_cpus_it_is_started_on() -> None:
    """How a restarted vLLM escapes the API's pinning: it starts on the CPUs the first vLLM started on."""
    seen: dict[str, object] = {}

    def pinned_thread() -> None:
        os.sched_setaffinity(0, {min(OURS)})  # this thread only, as the API's threads after pinning
        with starting_on(set(OURS)):
            child = subprocess.run(
                [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
        seen["child"] = json.loads(child.stdout)
        seen["thread after"] = own_cpus()

    thread = threading.Thread(target=pinned_thread)
    thread.start()
    thread.join()
    assert seen == {"child": sorted(OURS), "thread after": {min(OURS)}}
