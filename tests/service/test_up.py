"""`ragserve up` as a real process: it serves, SIGTERM lets an in-flight stream finish before it exits, and a
vLLM it started itself runs on its own cores, behind its own key, without the API's secrets, and stops with
it, even when the API is killed."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from ragserve.engine import keeper
from ragserve.engine.cpu_placement import bound_cpus
from ragserve.engine.process_table import group_members, processes
from ragserve.engine.vllm_client import VllmClient
from ragserve.engine.vllm_process import VllmProcess, free_port, wait_for_ok
from ragserve.launch import registration
from ragserve.service.config import BUNDLED_BASE
from tests.service.conftest import KEYS, tenant_docs
from tests.support.chat import sse_data, stream_chat, user


def _config(root: Path) -> Path:
    docs = tenant_docs(root / "docs")
    lines = ["[model]\nmax_tokens = 40\n"]
    for tenant, folder in docs.items():
        lines.append(f'[tenants.{tenant}]\napi_key = "{KEYS[tenant]}"\ndocs = "{folder}"\n')
    path = root / "ragserve.toml"
    path.write_text("\n".join(lines))
    return path


def _start_own_vllm_up(
    tmp_path: Path, data_dir: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Path, int, int]:
    """`ragserve up` starting its own vLLM on a known port: the process, its log, its port, vLLM's port."""
    port, vllm_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "ragserve.cli.main", "up", "--config", str(_config(tmp_path)),
           "--port", str(port), "--data-dir", str(data_dir)]  # fmt: skip
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAGSERVE_VLLM_PORT": str(vllm_port), **(env or {})}
    log_path = tmp_path / "up.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env)
    return proc, log_path, port, vllm_port


def test_up_serves_and_sigterm_lets_the_stream_in_flight_finish(
    tmp_path: Path, vllm: VllmProcess, llm_in_data_dir: Path, data_dir: Path
) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "ragserve.cli.main", "up", "--config", str(_config(tmp_path)),
           "--vllm-url", vllm.url, "--port", str(port), "--data-dir", str(data_dir)]  # fmt: skip
    log = (tmp_path / "up.log").open("wb")
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for_ok(f"{url}/readyz", proc, 240), (tmp_path / "up.log").read_text()
        assert registration.read(data_dir) == url
        events: list[str] = []
        started = threading.Event()

        def stream() -> None:
            body = {"messages": user("Tell a story."), "max_tokens": 120, "ignore_eos": True, "rag": False}
            with stream_chat(url, KEYS["globex"], body) as response:
                for data in sse_data(response.iter_lines()):
                    events.append(data)
                    started.set()

        client = threading.Thread(target=stream)
        client.start()
        assert started.wait(60)
        proc.send_signal(signal.SIGTERM)
        client.join(120)
        assert proc.wait(timeout=90) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    output = (tmp_path / "up.log").read_text()
    assert events[-1] == "[DONE]", output  # the stream was not cut off by the shutdown
    assert '"citations"' in events[-2]
    assert "serving on" in output and output.rstrip().endswith("stopped") and "Traceback" not in output
    assert registration.read(data_dir) is None


def _vllm_of(pid: int) -> tuple[int, int]:
    """The vLLM that the process pid started: its process group (its keeper's pid) and its server's pid."""
    keepers = [p.pid for p in processes() if p.parent == pid and keeper.__name__.encode() in _cmdline(p.pid)]
    assert keepers, f"process {pid} has started no vLLM"
    servers = [
        p.pid for p in processes() if p.parent == keepers[0] and b"vllm.entrypoints" in _cmdline(p.pid)
    ]
    assert servers, f"vLLM's keeper {keepers[0]} has no vLLM server"
    return keepers[0], servers[0]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _environment(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


def _served_models(url: str, key: str) -> set[str]:
    async def ask() -> set[str]:
        client = VllmClient(url, api_key=key)
        try:
            return await client.served_models()
        finally:
            await client.aclose()

    return asyncio.run(ask())


def _check_vllm_is_keyed_and_has_no_api_secrets(
    vllm_pid: int, vllm_url: str, secrets: dict[str, str]
) -> None:
    """Its key is in its environment, not its argv; /v1 refuses a call without it, /health does not."""
    env = _environment(vllm_pid)
    key = env["VLLM_API_KEY"]
    assert len(key) >= 32 and key.encode() not in Path(f"/proc/{vllm_pid}/cmdline").read_bytes()
    assert not set(secrets) & set(env) and not set(secrets.values()) & set(env.values())
    assert not any(name.startswith("RAGSERVE_") for name in env)
    assert httpx.get(f"{vllm_url}/v1/models", timeout=10).status_code == 401
    assert (
        httpx.get(f"{vllm_url}/v1/models", timeout=10, headers={"Authorization": "Bearer wrong"}).status_code
        == 401
    )
    assert httpx.get(f"{vllm_url}/health", timeout=10).status_code == 200
    assert BUNDLED_BASE in _served_models(vllm_url, key)


def test_up_starts_its_own_vllm_keeps_off_its_cores_and_stops_it(
    tmp_path: Path, llm_in_data_dir: Path, data_dir: Path
) -> None:
    secrets = {"RAGSERVE_ADMIN_KEY": "an-admin-key-for-the-test", "GLOBEX_API_KEY": KEYS["globex"]}
    proc, log_path, port, vllm_port = _start_own_vllm_up(tmp_path, data_dir, secrets)
    url, vllm_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{vllm_port}"
    try:
        assert wait_for_ok(f"{url}/readyz", proc, 400), log_path.read_text()
        body = {"messages": [{"role": "user", "content": "When do refunds apply?"}], "max_tokens": 8}
        answer = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60,
                            headers={"Authorization": f"Bearer {KEYS['globex']}"})  # fmt: skip
        assert answer.status_code == 200 and answer.json()["citations"]  # so the API sent vLLM its key
        vllm_group, vllm_pid = _vllm_of(proc.pid)
        _check_vllm_is_keyed_and_has_no_api_secrets(vllm_pid, vllm_url, secrets)
        ours, compute = os.sched_getaffinity(0), bound_cpus(vllm_group)
        if len(ours) > 1:  # vLLM binds its compute threads; the API takes the CPUs it left
            assert compute and os.sched_getaffinity(proc.pid) == ours - compute
            assert "off vLLM's compute cores" in log_path.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    with pytest.raises(httpx.ConnectError):  # vLLM went with it
        httpx.get(f"{vllm_url}/health", timeout=5)
    assert log_path.read_text().rstrip().endswith("stopped")


def test_a_killed_up_takes_its_vllm_with_it(tmp_path: Path, llm_in_data_dir: Path, data_dir: Path) -> None:
    # SIGKILL leaves the API no chance to stop vLLM: the kernel tells vLLM's keeper (engine/keeper.py).
    proc, log_path, port, vllm_port = _start_own_vllm_up(tmp_path, data_dir)
    try:
        assert wait_for_ok(f"http://127.0.0.1:{port}/readyz", proc, 400), log_path.read_text()
        vllm_group, _ = _vllm_of(proc.pid)
        assert len(group_members(vllm_group, running=True)) >= 3  # its keeper, API server and engine core
        proc.kill()
        proc.wait(timeout=30)
        deadline = time.monotonic() + 90
        while group_members(vllm_group, running=True) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert group_members(vllm_group, running=True) == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{vllm_port}/health", timeout=5)
