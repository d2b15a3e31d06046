"""Every refusal the issue lists, each on a real PEFT adapter made for the real base model, then broken."""

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from ragserve.adapters.registry import AdapterVersion
from ragserve.adapters.validation import AdapterLimits, BaseModelInfo, validate
from ragserve.errors import AdapterInvalidError
from ragserve.service.config import BUNDLED_BASE
from tests.support.models import make_lora

WEIGHTS = "adapter_model.safetensors"


@pytest.fixture(scope="module")
def good_lora(base_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_lora(base_model_dir, tmp_path_factory.mktemp("lora") / "good")


@pytest.fixture(scope="module")
def base(base_model_dir: Path) -> BaseModelInfo:
    return BaseModelInfo.read(BUNDLED_BASE, base_model_dir)


def _copy(good_lora: Path, tmp_path: Path) -> AdapterVersion:
    path = tmp_path / "style" / "v1"
    shutil.copytree(good_lora, path)
    return AdapterVersion("style", "v1", path)


def _edit_config(version: AdapterVersion, **changes: object) -> None:
    path = version.path / "adapter_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_a_good_adapter_passes(good_lora: Path, tmp_path: Path, base: BaseModelInfo) -> None:
    config = validate(_copy(good_lora, tmp_path), base, AdapterLimits())
    assert config["r"] == 8


def _transpose_one_tensor(version: AdapterVersion) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(version.path / WEIGHTS))
    key = next(k for k in tensors if k.endswith("lora_A.weight"))
    tensors[key] = tensors[key].T.contiguous()
    save_file(tensors, str(version.path / WEIGHTS))


def _truncate(version: AdapterVersion) -> None:
    path = version.path / WEIGHTS
    os.truncate(path, path.stat().st_size - 100)


BREAKAGES: list[tuple[str, Callable[[AdapterVersion], object], AdapterLimits, str]] = [
    ("peft type", lambda v: _edit_config(v, peft_type="IA3"), AdapterLimits(), "PEFT type is 'IA3'"),
    ("base model", lambda v: _edit_config(v, base_model_name_or_path="/models/llama-3-8b"), AdapterLimits(),
     "trained on base model 'llama-3-8b', but this server serves 'smollm2-135m'"),
    ("rank", lambda v: None, AdapterLimits(max_rank=4), "rank 8 is above the server's --max-lora-rank 4"),
    ("missing module", lambda v: _edit_config(v, target_modules=["q_proj", "qq_proj"]), AdapterLimits(),
     r"target modules \['qq_proj'\] do not exist in the base model"),
    ("unserved module", lambda v: _edit_config(v, target_modules=["q_proj", "gate_proj"]), AdapterLimits(),
     r"target modules \['gate_proj'\] are not served"),
    ("shape", _transpose_one_tensor, AdapterLimits(), "has shape"),
    ("truncated", _truncate, AdapterLimits(), "truncated"),
    ("not safetensors", lambda v: (v.path / WEIGHTS).write_bytes(b"\x10" + bytes(7) + b"not json at all!"),
     AdapterLimits(), "not safetensors"),
    ("symlink", lambda v: (v.path / "extra").symlink_to("/etc/hostname"), AdapterLimits(),
     "symlink that leaves the adapter folder"),
    ("size", lambda v: None, AdapterLimits(max_bytes=10_000), "over the 10000-byte cap"),
    ("no weights", lambda v: (v.path / WEIGHTS).unlink(), AdapterLimits(), f"has no {WEIGHTS}"),
    ("bad config", lambda v: (v.path / "adapter_config.json").write_text("{"), AdapterLimits(), "unreadable"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "breakage", "limits", "message"), BREAKAGES, ids=[b[0] for b in BREAKAGES])
def test_each_broken_adapter_is_refused_with_its_reason(
    what: str,
    breakage: Callable[[AdapterVersion], object],
    limits: AdapterLimits,
    message: str,
    good_lora: Path,
    tmp_path: Path,
    base: BaseModelInfo,
) -> None:
    version = _copy(good_lora, tmp_path)
    breakage(version)
    with pytest.raises(AdapterInvalidError, match=message):
        validate(version, base, limits)
