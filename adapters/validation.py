"""Checks an adapter folder before vLLM ever sees it; each refusal names the problem.

Everything is read from headers: a safetensors file starts with its own JSON table of tensor names,
dtypes, shapes and byte offsets, so shapes and truncation are checked without loading any weights.
"""

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragserve.adapters.registry import AdapterVersion, check_safe_name
from ragserve.errors import AdapterInvalidError
from ragserve.settings import Settings

__all__ = [
    "SERVED_TARGET_MODULES",
    "AdapterLimits",
    "BaseModelInfo",
    "read_safetensors_header",
    "validate",
    "validate_on_base",
]

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
# What vLLM is started to serve (`--lora-target-modules qkv_proj o_proj`), in PEFT's module names.
SERVED_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}  # fmt: skip
_MAX_HEADER = 100 * 1024 * 1024
_PEFT_PREFIX = "base_model.model."


@dataclass(frozen=True)
class AdapterLimits:
    """What the server accepts; the defaults are the settings' (RAGSERVE_MAX_LORA_RANK, ...)."""

    max_rank: int = Settings.model_fields["max_lora_rank"].default
    max_bytes: int = Settings.model_fields["adapter_max_bytes"].default

    @classmethod
    def of(cls, settings: Settings) -> "AdapterLimits":
        return cls(settings.max_lora_rank, settings.adapter_max_bytes)


@dataclass(frozen=True)
class BaseModelInfo:
    """The served base model: its name, and each linear module's weight shape, from its headers."""

    served_name: str
    folder: Path
    weights: dict[str, tuple[int, ...]]  # "model.layers.0.self_attn.q_proj" -> (out, in)

    @classmethod
    def read(cls, served_name: str, folder: Path) -> "BaseModelInfo":
        weights: dict[str, tuple[int, ...]] = {}
        for file in sorted(folder.glob("*.safetensors")):
            for key, entry in read_safetensors_header(file).items():
                if key.endswith(".weight"):
                    weights[key.removesuffix(".weight")] = tuple(entry["shape"])
        if not weights:
            raise AdapterInvalidError(f"base model folder {folder} holds no safetensors weights")
        return cls(served_name, folder, weights)


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The tensor table, after checking that every tensor's bytes are really in the file."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                raise AdapterInvalidError(f"{path.name} is truncated: no safetensors header")
            (header_len,) = struct.unpack("<Q", prefix)
            if header_len > min(_MAX_HEADER, size - 8):
                raise AdapterInvalidError(f"{path.name} is truncated or not safetensors: bad header length")
            header = json.loads(f.read(header_len))
    except OSError as exc:
        raise AdapterInvalidError(f"{path.name} is unreadable: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterInvalidError(f"{path.name} is not safetensors: its header is not JSON") from exc
    if not isinstance(header, dict):
        raise AdapterInvalidError(f"{path.name} is not safetensors: its header is not a table")
    header.pop("__metadata__", None)
    data_size = size - 8 - header_len
    for key, entry in header.items():
        try:
            start, end = entry["data_offsets"]
            expected = math.prod(entry["shape"]) * _DTYPE_BYTES[entry["dtype"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise AdapterInvalidError(f"{path.name}: tensor {key} has a malformed entry") from exc
        if end > data_size:
            raise AdapterInvalidError(f"{path.name} is truncated: tensor {key} ends past the end of the file")
        if end - start != expected:
            raise AdapterInvalidError(
                f"{path.name}: tensor {key} has {end - start} bytes, expected {expected}"
            )
    return header


def validate(version: AdapterVersion, base: BaseModelInfo, limits: AdapterLimits) -> dict[str, Any]:
    """Every check that must pass before loading; returns the adapter's PEFT config."""
    check_safe_name(version.name, "name")
    check_safe_name(version.version, "version")
    folder = version.path
    _check_files(folder, limits)
    config = _read_config(folder)
    _check_base(version, config, base)
    targets = _check_targets(config, base)
    _check_rank(config, limits)
    _check_tensors(folder / WEIGHTS_FILE, base, targets, limits.max_rank)
    return config


def _check_files(folder: Path, limits: AdapterLimits) -> None:
    root = folder.resolve()
    total = 0
    for path in folder.rglob("*"):
        if path.is_symlink() and root not in path.resolve().parents:
            raise AdapterInvalidError(f"{path.name} is a symlink that leaves the adapter folder")
        if path.is_file():
            total += path.stat().st_size
    if total > limits.max_bytes:
        raise AdapterInvalidError(f"the adapter is {total} bytes, over the {limits.max_bytes}-byte cap")
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise AdapterInvalidError(f"the adapter folder has no {name}")


def _read_config(folder: Path) -> dict[str, Any]:
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterInvalidError(f"{CONFIG_FILE} is unreadable: {exc}") from exc
    if not isinstance(config, dict):
        raise AdapterInvalidError(f"{CONFIG_FILE} is not a JSON object")
    if config.get("peft_type") != "LORA":
        raise AdapterInvalidError(f"PEFT type is {config.get('peft_type')!r}; only LORA adapters are served")
    return config


def _check_base(version: AdapterVersion, config: dict[str, Any], base: BaseModelInfo) -> None:
    card = version.card()
    if card is not None:
        claimed = card.base_model
    else:
        claimed = Path(str(config.get("base_model_name_or_path") or "")).name
    if claimed not in (base.served_name, base.folder.name):
        raise AdapterInvalidError(
            f"the adapter was trained on base model {claimed!r}, but this server serves {base.served_name!r}"
        )


def _check_targets(config: dict[str, Any], base: BaseModelInfo) -> list[str]:
    targets = config.get("target_modules")
    if isinstance(targets, str) or not isinstance(targets, list) or not targets:
        raise AdapterInvalidError("target_modules must be a list of module names")
    leaves = {module.rsplit(".", 1)[-1] for module in base.weights}
    missing = [t for t in targets if t not in leaves]
    if missing:
        raise AdapterInvalidError(f"target modules {missing} do not exist in the base model")
    unserved = [t for t in targets if t not in SERVED_TARGET_MODULES]
    if unserved:
        raise AdapterInvalidError(
            f"target modules {unserved} are not served (vLLM serves LoRA on {list(SERVED_TARGET_MODULES)})"
        )
    return [str(t) for t in targets]


def _check_rank(config: dict[str, Any], limits: AdapterLimits) -> None:
    rank = config.get("r")
    ranks = [rank, *(config.get("rank_pattern") or {}).values()]
    if not all(isinstance(r, int) and r > 0 for r in ranks):
        raise AdapterInvalidError(f"rank r={rank!r} is not a positive integer")
    if max(ranks) > limits.max_rank:
        raise AdapterInvalidError(
            f"rank {max(ranks)} is above the server's --max-lora-rank {limits.max_rank}"
        )


def _check_tensors(path: Path, base: BaseModelInfo, targets: list[str], max_rank: int) -> None:
    header = read_safetensors_header(path)
    if not header:
        raise AdapterInvalidError(f"{WEIGHTS_FILE} holds no tensors")
    for key, entry in header.items():
        module, _, kind = key.removeprefix(_PEFT_PREFIX).rpartition(".lora_")
        if kind not in ("A.weight", "B.weight"):
            raise AdapterInvalidError(
                f"{WEIGHTS_FILE}: unexpected tensor {key} (only LoRA A and B are served)"
            )
        if module not in base.weights:
            raise AdapterInvalidError(f"{WEIGHTS_FILE}: tensor {key} is for {module}, not in the base model")
        if module.rsplit(".", 1)[-1] not in targets:
            raise AdapterInvalidError(f"{WEIGHTS_FILE}: tensor {key} is outside target_modules {targets}")
        out_features, in_features = base.weights[module][:2]
        shape = tuple(entry["shape"])
        a = kind == "A.weight"
        if len(shape) != 2 or (shape[1] != in_features if a else shape[0] != out_features):
            needed = ["r", in_features] if a else [out_features, "r"]
            raise AdapterInvalidError(
                f"{WEIGHTS_FILE}: tensor {key} has shape {list(shape)}, but the base model needs {needed}"
            )
        rank = shape[0] if a else shape[1]
        if rank > max_rank:
            raise AdapterInvalidError(f"{WEIGHTS_FILE}: tensor {key} has rank {rank}, above {max_rank}")


def validate_on_base(version: AdapterVersion, base_name: str, base_dir: Path, settings: Settings) -> None:
    """The checks the service runs before it loads an adapter, with the settings' limits, against the base
    model served as `base_name` from `base_dir`."""
    validate(version, BaseModelInfo.read(base_name, base_dir), AdapterLimits.of(settings))
