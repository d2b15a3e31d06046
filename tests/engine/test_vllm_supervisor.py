"""The supervisor: its restart schedule; its watch of a vLLM it did not start; and its restarts of one it did,
with a small stand-in server in vLLM's place, killed or hung for real. (A real vLLM killed and restarted
under the service: tests/service/test_vllm_restart.py.)"""

import asyncio
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from ragserve.engine.vllm_client import VllmClient
from ragserve.engine.vllm_process import VllmProcess, free_port
from ragserve.engine.vllm_supervisor import Backoff, VllmSupervisor
from tests.engine.stand_in import StandInSpec
from tests.support.servers import running_app


def test_restart_waits_double_from_one_second_up_to_a_minute() -> None:
    backoff = Backoff()
    assert [backoff.next_delay(now=float(t)) for t in range(9)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_restart_waits_start_over_only_after_a_restart_stayed_up() -> None:
    backoff = Backoff(reset_after_s=300)
    assert [backoff.next_delay(0), backoff.next_delay(1)] == [1, 2]
    backoff.up(now=10)
    assert backoff.next_delay(now=100) == 4  # up for 90 s: still dying too often
    backoff.up(now=110)
    assert backoff.next_delay(now=410) == 1  # up for 300 s: a fresh start
    assert backoff.next_delay(now=411) == 2


def test_restart_waits_stay_at_the_cap_however_many_restarts() -> None:
    backoff = Backoff(first_s=0.5, cap_s=60)
    delays = [backoff.next_delay(0) for _ in range(2000)]
    assert delays[:3] == [0.5, 1, 2] and set(delays[8:]) == {60}


@pytest.fixture(scope="module")
def health() -> Iterator[tuple[str, dict[str, int]]]:
    """A stand-in /health whose status the test sets."""
    status = {"code": 200}
    app = FastAPI()

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({}, status_code=status["code"])

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    with running_app(app) as url:
        yield url, status


def test_a_lost_vllm_is_reachable_again_only_after_health_answers_and_the_adapters_are_back(
    health: tuple[str, dict[str, int]],
) -> None:
    url, status = health
    status["code"] = 503

    async def scenario() -> list[str]:
        client = VllmClient(url)
        seen: list[str] = []

        async def on_back() -> None:
            seen.append(f"adapters loaded while reachable={client.reachable}")

        client.mark_unreachable()  # as a chat call that lost its connection does
        watch = asyncio.create_task(VllmSupervisor(client, None, on_back, poll_s=0.02).run())
        try:
            await asyncio.sleep(0.2)
            seen.append(f"unhealthy: reachable={client.reachable}")
            status["code"] = 200
            for _ in range(100):
                if client.reachable:
                    break
                await asyncio.sleep(0.02)
            seen.append(f"healthy: reachable={client.reachable}")
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
            await client.aclose()
        return seen

    assert asyncio.run(scenario()) == [
        "unhealthy: reachable=False",
        "adapters loaded while reachable=False",
        "healthy: reachable=True",
    ]


def test_a_watched_vllm_that_stays_healthy_is_left_alone(health: tuple[str, dict[str, int]]) -> None:
    url, status = health
    status["code"] = 200

    async def scenario() -> int:
        client = VllmClient(url)
        backs: list[None] = []

        async def on_back() -> None:
            backs.append(None)

        watch = asyncio.create_task(VllmSupervisor(client, None, on_back, poll_s=0.02).run())
        await asyncio.sleep(0.3)
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
        await client.aclose()
        return len(backs)

    assert asyncio.run(scenario()) == 0


@pytest.fixture
def stand_in_vllm(tmp_path: Path) -> Iterator[VllmProcess]:
    spec = StandInSpec(tmp_path, "stand-in", free_port(), 8, hang_flag=tmp_path / "hang")
    with VllmProcess(spec, tmp_path / "stand-in.log").running(timeout_s=30) as process:
        yield process


async def _until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def _supervised(process: VllmProcess, client: VllmClient, events: list[str]) -> VllmSupervisor:
    async def on_back() -> None:
        events.append("adapters loaded")

    return VllmSupervisor(
        client, process, on_back, lambda: events.append("restart"),
        poll_s=0.05, probe_timeout_s=0.5, silent_after_s=1.0, backoff=Backoff(first_s=0.1),
    )  # fmt: skip


def test_a_process_that_dies_is_started_again_on_its_port(
    stand_in_vllm: VllmProcess, caplog: pytest.LogCaptureFixture
) -> None:
    process, first_pid = stand_in_vllm, stand_in_vllm.pid
    assert first_pid is not None
    events: list[str] = []

    async def scenario() -> None:
        client = VllmClient(process.url)
        watch = asyncio.create_task(_supervised(process, client, events).run())
        try:
            os.killpg(first_pid, signal.SIGKILL)
            await _until(lambda: not client.reachable)
            await _until(lambda: client.reachable)
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
            await client.aclose()

    asyncio.run(scenario())
    assert events == ["restart", "adapters loaded"]
    assert process.pid != first_pid and process.returncode is None
    assert f"vLLM exited with code -9; its log: {process.log_path}" in caplog.text


def test_a_process_that_stops_answering_is_started_again(
    stand_in_vllm: VllmProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    process, first_pid = stand_in_vllm, stand_in_vllm.pid
    events: list[str] = []

    async def scenario() -> None:
        client = VllmClient(process.url)
        watch = asyncio.create_task(_supervised(process, client, events).run())
        try:
            (tmp_path / "hang").touch()  # alive, but /health never answers
            await _until(lambda: "restart" in events)
            (tmp_path / "hang").unlink()
            await _until(lambda: client.reachable and "adapters loaded" in events)
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
            await client.aclose()

    asyncio.run(scenario())
    assert events == ["restart", "adapters loaded"]
    assert process.pid != first_pid
    # The silence counts from the first failed probe and is checked after each 0.5 s probe, so it reads 1 s,
    # or 2 s when a slow machine rounds 1.5 s up.
    assert re.search(r"vLLM has not answered /health for [12]s", caplog.text), caplog.text
