"""Real servers for the service tests: vLLM as a subprocess, the app under uvicorn on a loopback port."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service.stack import serving_in_thread as running_app
from service.vllm_process import VllmProcess, VllmSpec, free_port

__all__ = ["free_port", "make_lora", "running_app", "running_vllm"]


@contextmanager
def running_vllm(model_dir: Path, served_name: str, log: Path, dtype: str = "auto") -> Iterator[VllmProcess]:
    process = VllmProcess(VllmSpec(model_dir, served_name, free_port(), max_model_len=2048, dtype=dtype), log)
    process.start()
    try:
        process.wait_healthy(timeout_s=400)
        yield process
    finally:
        process.stop()


def make_lora(model_dir: Path, out: Path, seed: int = 0) -> Path:
    """A small random LoRA (r=8 on q, k, v, o) that visibly changes the model's output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    config = LoraConfig(
        r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], init_lora_weights=False
    )
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(str(out))
    return out
