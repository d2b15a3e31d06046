"""Real servers for the service tests: vLLM as a subprocess, the app under uvicorn on a loopback port."""

from ragserve.engine.vllm_process import free_port
from ragserve.service.stack import serving_in_thread as running_app
from ragserve.testing import make_lora, running_vllm

__all__ = ["free_port", "make_lora", "running_app", "running_vllm"]
