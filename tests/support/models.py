"""The bundled LLM served by a real vLLM around a block, the session's LLM made ready early, and a small
random LoRA that visibly changes the model."""

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from ragserve.adapters.validation import SERVED_TARGET_MODULES, AdapterLimits
from ragserve.engine.base_model import ensure_base_model
from ragserve.engine.vllm_process import VllmProcess, VllmSpec, free_port
from ragserve.service.config import BUNDLED_BASE

__all__ = ["EarlyLlm", "make_lora", "running_vllm"]


@contextmanager
def running_vllm(
    model_dir: Path,
    served_name: str,
    log: Path,
    dtype: str = "auto",
    api_key: str | None = None,
    kv_cache_gib: int = VllmSpec.kv_cache_gib,
) -> Iterator[VllmProcess]:
    """`api_key`: None serves /v1 with no key, as the tests' shared vLLM does (`ragserve up` sets one)."""
    spec = VllmSpec(
        model_dir, served_name, free_port(), AdapterLimits.max_rank, dtype=dtype, api_key=api_key,
        kv_cache_gib=kv_cache_gib,
    )  # fmt: skip
    with VllmProcess(spec, log).running(timeout_s=400) as process:
        yield process


class EarlyLlm:
    """The session's converted LLM, its shared vLLM and every vLLM a test kills, made ready in a thread from
    the session's start, one after the other: a vLLM's start-up is most of a minute on 2 cores, most of it
    one core importing, and here it runs beside other tests (conftest orders those that need no LLM first,
    then those that kill a vLLM) instead of in front of the test that needs it. Asking for one waits until it
    is ready. A vLLM to kill serves one test's few requests: 1 GiB of KV cache (45k tokens of this model)
    instead of 2 keeps the idle ones smaller, and all of them are gone before the tests that start vLLMs of
    their own."""

    OWN_KV_CACHE_GIB = 1

    def __init__(self, tmp: pytest.TempPathFactory, shared_vllm: bool, own_vllms: int) -> None:
        self._tmp = tmp
        self._stack = ExitStack()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="early-llm")
        self._model_dir = self._pool.submit(ensure_base_model, BUNDLED_BASE, tmp.mktemp("llm"))
        self._shared: Future[VllmProcess] | None = self._boot("vllm") if shared_vllm else None
        self._own = deque(self._boot("own-vllm", self.OWN_KV_CACHE_GIB) for _ in range(own_vllms))

    def _boot(self, name: str, kv_cache_gib: int = VllmSpec.kv_cache_gib) -> "Future[VllmProcess]":
        def start() -> VllmProcess:
            log = self._tmp.mktemp(name) / "vllm.log"
            served = running_vllm(self._model_dir.result(), BUNDLED_BASE, log, kv_cache_gib=kv_cache_gib)
            return self._stack.enter_context(served)

        return self._pool.submit(start)

    def model_dir(self) -> Path:
        return self._model_dir.result()

    def shared_vllm(self) -> VllmProcess:
        if self._shared is None:
            self._shared = self._boot("vllm")
        return self._shared.result()

    def own_vllm(self) -> VllmProcess:
        """A vLLM for one test alone (to kill): one started ahead, or a new one."""
        ready = self._own.popleft() if self._own else self._boot("own-vllm", self.OWN_KV_CACHE_GIB)
        return ready.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._stack.close()


def make_lora(
    model_dir: Path,
    out: Path,
    seed: int = 0,
    rank: int = 8,
    target_modules: tuple[str, ...] = SERVED_TARGET_MODULES,
) -> Path:
    """A small random LoRA (by default r=8 on all the modules vLLM serves) that visibly changes the model's
    output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    config = LoraConfig(
        r=rank, lora_alpha=2 * rank, target_modules=list(target_modules), init_lora_weights=False
    )
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(str(out))
    return out
