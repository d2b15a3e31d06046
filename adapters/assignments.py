"""Which adapter version each tenant uses, persisted in the data dir so it survives restarts."""

import json
from pathlib import Path

from ragserve.errors import ConfigError
from ragserve.files import write_atomically

__all__ = ["AssignmentStore"]


class AssignmentStore:
    """`assignments.json`: {tenant: "name@version"}; "" means the base model. Writes are atomic renames."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> "AssignmentStore":
        return cls(data_dir / "assignments.json")

    def read(self) -> dict[str, str]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.path}: unreadable adapter assignments: {exc}") from exc
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise ConfigError(f"{self.path}: expected an object of tenant to adapter")
        return {str(k): v for k, v in raw.items()}

    def effective(self, configured: dict[str, str]) -> dict[str, str]:
        """Each tenant's adapter: its persisted assignment if it has one, else the config's."""
        persisted = self.read()
        return {tenant: persisted.get(tenant, ref) for tenant, ref in configured.items()}

    def set(self, tenant: str, ref: str) -> None:
        current = self.read()
        current[tenant] = ref
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, json.dumps(current, indent=2, sort_keys=True) + "\n")
