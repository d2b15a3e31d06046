"""Real servers for the service tests: vLLM as a subprocess, the app under uvicorn on a loopback port."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

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


@contextmanager
def running_app(app: FastAPI) -> Iterator[str]:
    """Serves the app in a thread; yields its base URL; shuts it down gracefully."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.started:
            break
        if not thread.is_alive():
            raise RuntimeError("the app did not start")
        time.sleep(0.1)
    try:
        httpx.get(f"{url}/healthz", timeout=5).raise_for_status()
        yield url
    finally:
        server.should_exit = True
        thread.join(30)


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
