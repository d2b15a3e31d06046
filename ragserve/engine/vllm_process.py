"""A real vLLM OpenAI server as a managed subprocess: started with LoRA enabled, bound to loopback, behind an
API key, and with only the environment it needs.

vLLM loads LoRA adapters at run time from any path it is given, so every /v1 call (the load endpoints
included) needs its key; /health stays open, which is what readiness polls (vLLM's AuthenticationMiddleware
guards the /v1, /v2, /inference and /cohere prefixes only). The key goes in through VLLM_API_KEY, not argv,
so `ps` does not show it. The API's own secrets (RAGSERVE_*, the tenants' key variables) never reach vLLM:
its environment is built from an allow-list.
"""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import SecretStr

from ragserve.engine import keeper
from ragserve.engine.cpu_placement import own_cpus, starting_on
from ragserve.errors import UpstreamError
from ragserve.hardware import cpu_has_native_bf16

__all__ = ["VllmProcess", "VllmSpec", "free_port", "start_key", "vllm_environment", "wait_for_ok"]

# What vLLM, torch and the CPU/GPU runtimes read; anything else in the API's environment stays there.
_ENV_NAMES = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TMPDIR", "TZ", "VIRTUAL_ENV"})
_ENV_PREFIXES = ("VLLM_", "HF_", "HUGGINGFACE_", "TRANSFORMERS_", "TOKENIZERS_", "TORCH", "TRITON_", "PYTHON",
                 "OMP_", "KMP_", "MKL_", "ONEDNN_", "DNNL_", "CUDA_", "NVIDIA_", "NCCL_", "LD_", "LC_",
                 "XDG_")  # fmt: skip


# Every vLLM runs under a keeper (engine/keeper.py), which stays its parent: vLLM then stops cleanly, engine
# core included, whether the API is SIGKILLed or a supervisor (a Ray worker) SIGKILLs its own children.
# The kernel ties the keeper's parent-death signal to the *thread* that forked it, so one thread that lasts
# as long as the process forks every vLLM.
_SPAWNER = ThreadPoolExecutor(1, thread_name_prefix="vllm-spawner")


def vllm_environment(parent: Mapping[str, str]) -> dict[str, str]:
    """The part of `parent` that vLLM may see: the allow-listed names, never a RAGSERVE_* variable."""
    return {
        name: value
        for name, value in parent.items()
        if (name in _ENV_NAMES or name.startswith(_ENV_PREFIXES)) and name != "VLLM_API_KEY"
    }


def start_key(configured: SecretStr | None) -> str:
    """The key for a vLLM ragserve starts: RAGSERVE_VLLM_API_KEY if set, else a fresh random one (also for a
    blank setting: vLLM takes an empty VLLM_API_KEY as no key at all)."""
    given = configured.get_secret_value().strip() if configured is not None else ""
    return given or secrets.token_urlsafe(32)


def free_port() -> int:
    """A loopback port free right now, for a server started next."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_ok(url: str, proc: "subprocess.Popen[bytes] | None", timeout_s: float) -> bool:
    """Polls url until it answers 200; False if the process (when given) exits first or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and (proc is None or proc.poll() is None):
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


@dataclass(frozen=True)
class VllmSpec:
    """How vLLM is started. The LoRA target modules match what ragserve's adapters train."""

    model_dir: Path
    served_name: str
    port: int
    max_lora_rank: int  # the service's setting (RAGSERVE_MAX_LORA_RANK), which adapter validation also reads
    enable_lora: bool = True  # False: a plain server, as for a model with an adapter merged into it
    max_model_len: int = 2048
    dtype: str = "auto"
    max_loras: int = 4
    max_cpu_loras: int = 8
    lora_target_modules: tuple[str, ...] = ("qkv_proj", "o_proj")
    kv_cache_gib: int = 2
    # How vLLM reads a tool call out of the model's text; vLLM needs one for any `tool_choice` but "none".
    tool_call_parser: str = "hermes"
    omp_cpus: str | None = None  # the CPU backend's cores (VLLM_CPU_OMP_THREADS_BIND); None: vLLM's choice
    extra_args: tuple[str, ...] = field(default_factory=tuple)
    api_key: str | None = field(default=None, repr=False)  # None: no key (tests' own vLLM only)

    def command(self) -> list[str]:
        # `python -m`: the `vllm` script of the vllm-cpu distribution does not start.
        return [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.model_dir),
            "--served-model-name", self.served_name,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--max-model-len", str(self.max_model_len),
            "--dtype", self.resolved_dtype(),
            *(self._lora_args() if self.enable_lora else ()),
            *(("--enable-auto-tool-choice", "--tool-call-parser", self.tool_call_parser)
              if self.tool_call_parser else ()),
            *self.extra_args,
        ]  # fmt: skip

    def _lora_args(self) -> list[str]:
        return [
            "--enable-lora",
            "--max-loras", str(self.max_loras),
            "--max-lora-rank", str(self.max_lora_rank),
            "--max-cpu-loras", str(self.max_cpu_loras),
            "--lora-target-modules", *self.lora_target_modules,
        ]  # fmt: skip

    def resolved_dtype(self) -> str:
        """ "auto" is chosen by measurement (make bench-dtype): on a CPU with native bf16, bfloat16 decoded
        1.52x faster than float32 at concurrency 8; without it bf16 is emulated. On a GPU, vLLM decides."""
        if self.dtype != "auto":
            return self.dtype
        import torch

        if torch.cuda.is_available():
            return "auto"
        return "bfloat16" if cpu_has_native_bf16() else "float32"

    def environment(self) -> dict[str, str]:
        """vLLM's environment: the allow-listed part of ours, LoRA loading on, and its API key."""
        env = {
            **vllm_environment(os.environ),
            "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
            "HF_HUB_OFFLINE": "1",
            "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", str(self.kv_cache_gib)),
        }
        if self.api_key is not None:
            env["VLLM_API_KEY"] = self.api_key
        if self.omp_cpus is not None:
            env["VLLM_CPU_OMP_THREADS_BIND"] = self.omp_cpus
        return env


class VllmProcess:
    """Starts, health-checks and stops one vLLM server; its output goes to a log file."""

    def __init__(self, spec: VllmSpec, log_path: Path) -> None:
        self.spec = spec
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{spec.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopped = False
        self._cpus = own_cpus()  # made before the API pins itself; a restart starts vLLM on these again

    @property
    def api_key(self) -> str | None:
        """What a client sends as `Authorization: Bearer` on /v1/*."""
        return self.spec.api_key

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._proc = _SPAWNER.submit(self._spawn).result()
        self._stopped = False

    def _spawn(self) -> "subprocess.Popen[bytes]":
        with self.log_path.open("ab") as log, starting_on(self._cpus):
            return subprocess.Popen(
                [sys.executable, "-m", keeper.__name__, str(os.getpid()), *self.spec.command()],
                env=self.spec.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a group for the keeper, vLLM and its workers: stop() ends them all
            )

    def wait_healthy(self, timeout_s: float = 300.0) -> None:
        proc = self._proc
        if proc is None:
            raise UpstreamError("vLLM was not started")
        if not wait_for_ok(f"{self.url}/health", proc, timeout_s):
            state = (
                "exited during start-up" if proc.poll() is not None else f"not healthy in {timeout_s:.0f}s"
            )
            raise UpstreamError(f"vLLM {state}; its log:\n{self.log_tail()}")

    @contextmanager
    def running(self, timeout_s: float = 300.0) -> Iterator["VllmProcess"]:
        """Started and healthy for the block; stopped after it, however it ends."""
        self.start()
        try:
            self.wait_healthy(timeout_s)
            yield self
        finally:
            self.stop()

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM to the whole group, then SIGKILL if it lingers; and SIGKILL to what a dead server left in
        its group (its engine core, when the OOM killer took the server alone)."""
        proc = self._proc
        if proc is None or self._stopped:
            return
        for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 10.0)):
            if proc.poll() is not None:
                break
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait)
        with suppress(ProcessLookupError):  # the group is gone already
            os.killpg(proc.pid, signal.SIGKILL)
        self._stopped = True  # its pid may be another group's once this group is gone: no signal to it again

    @property
    def returncode(self) -> int | None:
        """Its exit code once it has exited; None while it runs or before it starts."""
        return self._proc.poll() if self._proc is not None else None

    def restart(self) -> None:
        """Stopped (with any workers its dead leader left in its group) and started again on the same port."""
        self.stop()
        self.start()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
