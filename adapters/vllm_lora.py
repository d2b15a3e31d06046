"""Runtime LoRA calls against vLLM: load an adapter under a served name, unload it."""

import re
from pathlib import Path

import httpx

from ragserve.errors import UpstreamError

__all__ = ["load_adapter", "served_adapter_name"]

_UNSAFE = re.compile(r"[^a-z0-9._-]+")


def served_adapter_name(tenant: str, adapter_dir: Path) -> str:
    """A vLLM-safe served name: tenant and folder, lower-case, with only a-z, 0-9, '.', '_' and '-'."""
    return _UNSAFE.sub("-", f"{tenant}.{adapter_dir.name}".lower()).strip("-")[:100]


def load_adapter(vllm_url: str, name: str, path: Path, timeout_s: float = 120.0) -> None:
    """Loads once; a name vLLM already holds is left alone (in-place reloads are buggy in vLLM)."""
    try:
        loaded = httpx.get(f"{vllm_url}/v1/models", timeout=10).json()
        if any(m.get("id") == name for m in loaded.get("data", [])):
            return
        response = httpx.post(
            f"{vllm_url}/v1/load_lora_adapter",
            json={"lora_name": name, "lora_path": str(path)},
            timeout=timeout_s,
        )
    except httpx.HTTPError as exc:
        raise UpstreamError(f"cannot reach vLLM at {vllm_url} to load adapter {name}: {exc}") from exc
    if response.status_code != 200:
        raise UpstreamError(f"vLLM refused adapter {name} from {path}: {response.text[:500]}")
