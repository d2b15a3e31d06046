"""The bundled LLM served by a real vLLM around a block, and a small random LoRA that visibly changes it."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ragserve.adapters.validation import SERVED_TARGET_MODULES, AdapterLimits
from ragserve.engine.vllm_process import VllmProcess, VllmSpec, free_port

__all__ = ["make_lora", "running_vllm"]


@contextmanager
def running_vllm(
    model_dir: Path, served_name: str, log: Path, dtype: str = "auto", api_key: str | None = None
) -> Iterator[VllmProcess]:
    """`api_key`: None serves /v1 with no key, as the tests' shared vLLM does (`ragserve up` sets one)."""
    spec = VllmSpec(model_dir, served_name, free_port(), AdapterLimits.max_rank, dtype=dtype, api_key=api_key)
    with VllmProcess(spec, log).running(timeout_s=400) as process:
        yield process


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
