"""What an Edge store keeps beside its shards: the collections (vector config, metadata) and the aliases.

All of it is one JSON file, replaced atomically (ragserve.files.write_atomically) on every change, and
changed in memory only once the new file is in place: a kill or a failed write leaves the old catalog or the
new one, never a mix. An alias switch, however many operations it holds, is one such write.
"""

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qdrant_client import models as qm

from ragserve.files import write_atomically

__all__ = ["CATALOG", "EdgeCatalog"]

CATALOG = "catalog.json"
_FORMAT = 1
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,200}$")  # a collection's name is also its shard's folder name


class EdgeCatalog:
    """The catalog file of one store; the caller holds the store's lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        body = json.loads(path.read_text()) if path.exists() else {}
        self.collections: dict[str, dict[str, Any]] = body.get("collections", {})
        self.aliases: dict[str, str] = body.get("aliases", {})

    def exists(self, name: str) -> bool:
        """A collection or an alias of that name."""
        return name in self.collections or name in self.aliases

    def resolve(self, name: str) -> str:
        """The collection a name (a collection's or an alias's) stands for."""
        name = self.aliases.get(name, name)
        if name not in self.collections:
            raise ValueError(f"Collection {name} not found")
        return name

    def add(
        self,
        name: str,
        vectors: dict[str, qm.VectorParams],
        sparse: dict[str, qm.SparseVectorParams],
        metadata: dict[str, Any] | None,
    ) -> None:
        entry = {
            "vectors": {n: p.model_dump(mode="json", exclude_none=True) for n, p in vectors.items()},
            "sparse_vectors": {n: p.model_dump(mode="json", exclude_none=True) for n, p in sparse.items()},
            "metadata": json.loads(json.dumps(metadata or {})),
        }
        self._save({**self.collections, name: entry}, self.aliases)

    def remove(self, name: str) -> None:
        """The collection and the aliases that point at it."""
        kept = {n: e for n, e in self.collections.items() if n != name}
        self._save(kept, {a: c for a, c in self.aliases.items() if c != name})

    def params(self, name: str) -> qm.CollectionParams:
        entry = self.collections[name]
        return qm.CollectionParams(
            vectors={n: qm.VectorParams(**p) for n, p in entry["vectors"].items()},
            sparse_vectors={n: qm.SparseVectorParams(**p) for n, p in entry["sparse_vectors"].items()},
        )

    def folder(self, name: str) -> str:
        """The folder under collections/ that holds the collection's shard: its name, until a compaction."""
        return str(self.collections[name].get("folder", name))

    def folders(self) -> set[str]:
        return {self.folder(name) for name in self.collections}

    def set_folder(self, name: str, folder: str) -> None:
        self._save({**self.collections, name: {**self.collections[name], "folder": folder}}, self.aliases)

    def metadata(self, name: str) -> dict[str, Any]:
        return dict(self.collections[name]["metadata"])

    def merge_metadata(self, name: str, metadata: dict[str, Any]) -> None:
        """As the server merges it: a key set to None is removed."""
        merged = self.metadata(name)
        for key, value in json.loads(json.dumps(metadata)).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        self._save({**self.collections, name: {**self.collections[name], "metadata": merged}}, self.aliases)

    def change_aliases(self, operations: Sequence[qm.AliasOperations]) -> None:
        """Applies every operation, or none, with the server's checks."""
        aliases = dict(self.aliases)
        for op in operations:
            if isinstance(op, qm.CreateAliasOperation):
                alias, target = op.create_alias.alias_name, op.create_alias.collection_name
                if target not in self.collections:
                    raise ValueError(f"Collection {target} not found")
                if alias in self.collections:
                    raise ValueError(f"Collection {alias} already exists")
                aliases[alias] = target
            elif isinstance(op, qm.DeleteAliasOperation):
                aliases.pop(op.delete_alias.alias_name, None)
            elif isinstance(op, qm.RenameAliasOperation):
                old, new = op.rename_alias.old_alias_name, op.rename_alias.new_alias_name
                if old not in aliases:
                    raise ValueError(f"Alias {old} does not exist")
                if new in self.collections:
                    raise ValueError(f"Collection {new} already exists")
                aliases[new] = aliases.pop(old)
            else:
                raise ValueError(f"Unknown alias operation: {op!r}")
        self._save(self.collections, aliases)

    @staticmethod
    def check_name(name: str) -> None:
        if not _NAME.match(name):
            raise ValueError(f"bad collection name {name!r}: 1-200 of A-Z a-z 0-9 _ -")

    def _save(self, collections: dict[str, dict[str, Any]], aliases: dict[str, str]) -> None:
        body = {"format": _FORMAT, "collections": collections, "aliases": aliases}
        write_atomically(self.path, json.dumps(body, indent=1, sort_keys=True))
        self.collections, self.aliases = collections, aliases
