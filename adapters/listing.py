"""Every adapter in the registry, its versions with their cards, and which tenants use which version: what
`ragserve adapters list` prints and `GET /admin/adapters` answers, from assignments each of them knows."""

from dataclasses import asdict, dataclass
from typing import Any

from ragserve.adapters.registry import AdapterRegistry
from ragserve.errors import RagserveError

__all__ = ["AdapterListing", "VersionListing", "list_adapters"]


@dataclass(frozen=True)
class VersionListing:
    version: str
    path: str
    created_at: str | None
    base_model: str | None
    eval: dict[str, Any] | None  # the card's eval scores, by set-up
    tenants: list[str]


@dataclass(frozen=True)
class AdapterListing:
    name: str
    versions: list[VersionListing]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def list_adapters(registry: AdapterRegistry, assigned: dict[str, str]) -> list[AdapterListing]:
    """`assigned`: tenant -> NAME[@VERSION] ("" for the base model); a ref without a version counts for the
    newest version, and one to an adapter no longer in the registry counts for nothing."""
    users: dict[str, list[str]] = {}
    for tenant, ref in assigned.items():
        if ref:
            try:
                users.setdefault(registry.resolve(ref).ref, []).append(tenant)
            except RagserveError:
                continue  # an assignment to a removed adapter: nothing in the registry to mark
    listing = []
    for name in registry.names():
        versions = []
        for version in registry.versions(name):
            card = version.card()
            versions.append(
                VersionListing(
                    version=version.version,
                    path=str(version.path),
                    created_at=card.created_at if card else None,
                    base_model=card.base_model if card else None,
                    eval=card.eval if card else None,
                    tenants=sorted(users.get(version.ref, [])),
                )
            )
        listing.append(AdapterListing(name, versions))
    return listing
