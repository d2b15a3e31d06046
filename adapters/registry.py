"""The adapter registry on disk: `<root>/<name>/<version>/`, each version a PEFT LoRA folder and a card."""

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ragserve.adapters.card import AdapterCard
from ragserve.errors import AdapterInvalidError, AdapterNotFoundError
from ragserve.files import move_folder_durably

__all__ = ["AdapterRef", "AdapterRegistry", "AdapterVersion", "check_safe_name"]

_SAFE = re.compile(r"[a-z0-9][a-z0-9._-]*")
_MAX_NAME = 64
_VERSION = re.compile(r"v(\d+)")


def check_safe_name(value: str, what: str) -> str:
    """Only [a-z0-9._-], not starting with '.', '_' or '-', no '..', at most 64 characters."""
    if not value:
        raise AdapterInvalidError(f"adapter {what} is empty")
    if len(value) > _MAX_NAME:
        raise AdapterInvalidError(f"adapter {what} is over {_MAX_NAME} characters")
    if not _SAFE.fullmatch(value) or ".." in value:
        raise AdapterInvalidError(
            f"adapter {what} {value!r} is unsafe: use only a-z, 0-9, '.', '_' and '-', starting with a "
            "letter or digit, and no '..'"
        )
    return value


@dataclass(frozen=True)
class AdapterRef:
    """NAME or NAME@VERSION; without a version it means the newest one."""

    name: str
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> "AdapterRef":
        name, _, version = text.strip().partition("@")
        check_safe_name(name, "name")
        if version:
            check_safe_name(version, "version")
        return cls(name, version or None)

    def __str__(self) -> str:
        return f"{self.name}@{self.version}" if self.version else self.name


@dataclass(frozen=True)
class AdapterVersion:
    name: str
    version: str
    path: Path

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def served_name(self) -> str:
        """The name vLLM serves it under: one per version, so a new version never reloads an old name."""
        return f"{self.name}--{self.version}"

    def card(self) -> AdapterCard | None:
        return AdapterCard.read(self.path)


def _version_key(version: str) -> tuple[int, str]:
    match = _VERSION.fullmatch(version)
    return (int(match.group(1)) if match else -1, version)


# Adapters that ship with ragserve (trained here, on invented data, for the bundled base model): a registry
# that has no version of one of these names gets the shipped one as its first version, when first asked.
BUNDLED = Path(__file__).with_name("bundled")


class AdapterRegistry:
    """Names and versions are checked before they touch the filesystem; nothing resolves outside root."""

    def __init__(self, root: Path, bundled: Path | None = BUNDLED) -> None:
        self.root = root
        self.bundled = bundled

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _SAFE.fullmatch(p.name))

    def versions(self, name: str) -> list[AdapterVersion]:
        folder = self._folder(name)
        if not folder.is_dir():
            return []
        found = [p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
        return [
            AdapterVersion(name, v, folder / v)
            for v in sorted((v for v in found if _SAFE.fullmatch(v)), key=_version_key)
        ]

    def resolve(self, ref: AdapterRef | str) -> AdapterVersion:
        ref = AdapterRef.parse(ref) if isinstance(ref, str) else ref
        versions = self.versions(ref.name) or self._install_bundled(ref.name)
        if not versions:
            raise AdapterNotFoundError(f"no adapter named {ref.name!r} in {self.root}")
        if ref.version is None:
            return versions[-1]
        for version in versions:
            if version.version == ref.version:
                self._inside(version.path)
                return version
        have = ", ".join(v.version for v in versions)
        raise AdapterNotFoundError(f"adapter {ref.name!r} has no version {ref.version!r} (it has {have})")

    def next_version(self, name: str) -> str:
        numbers = [_version_key(v.version)[0] for v in self.versions(name)]
        return f"v{max([0, *numbers]) + 1}"

    def publish(self, name: str, staged: Path) -> AdapterVersion:
        """Moves a finished staging folder in as the next version, in one rename: never half-written."""
        folder = self._folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            version = self.next_version(name)
            try:
                move_folder_durably(staged, folder / version)  # fails if a concurrent run took this number
            except OSError:
                if (folder / version).exists():
                    continue
                raise
            return AdapterVersion(name, version, folder / version)

    def _install_bundled(self, name: str) -> list[AdapterVersion]:
        """The shipped adapter of this name, published as this registry's first version of it."""
        source = self.bundled / check_safe_name(name, "name") if self.bundled else None
        if source is None or not (source / "adapter_config.json").is_file():
            return []
        staging = self.staging_dir(name)
        for file in source.iterdir():
            if file.is_file():
                shutil.copyfile(file, staging / file.name)
        self.publish(name, staging)
        return self.versions(name)

    def staging_dir(self, name: str) -> Path:
        staging = self._folder(name) / f".staging-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        return staging

    def _folder(self, name: str) -> Path:
        return self._inside(self.root / check_safe_name(name, "name"))

    def _inside(self, path: Path) -> Path:
        """Refuses a path that resolves outside the registry, as a symlinked name or version would."""
        root = self.root.resolve()
        resolved = path.resolve()
        if resolved != root and root not in resolved.parents:
            raise AdapterInvalidError(f"{path} leaves the adapters folder {self.root}")
        return path
