"""The adapter listing that `ragserve adapters list` prints and `GET /admin/adapters` answers: each version
with its card, and the tenants whose assignment resolves to it."""

import json
import shutil
from pathlib import Path

from ragserve.adapters.card import CARD_FILE
from ragserve.adapters.listing import list_adapters
from ragserve.adapters.registry import AdapterRegistry


def test_each_version_lists_its_card_and_the_tenants_on_it(tmp_path: Path) -> None:
    registry = AdapterRegistry(tmp_path / "adapters")
    v1 = registry.resolve("grounding")  # the shipped adapter, card and all, published as v1
    shutil.copytree(v1.path, v1.path.with_name("v2"))
    (v1.path.with_name("v2") / CARD_FILE).unlink()
    (tmp_path / "adapters" / "style" / "v1").mkdir(parents=True)
    assigned = {"acme": "grounding@v1", "initech": "grounding", "globex": "", "hooli": "removed@v1"}
    listing = {entry.name: entry for entry in list_adapters(registry, assigned)}
    assert set(listing) == {"grounding", "style"}
    first, second = listing["grounding"].versions
    card = json.loads((v1.path / CARD_FILE).read_text())
    assert (first.version, first.tenants, first.path) == ("v1", ["acme"], str(v1.path))
    assert (first.created_at, first.base_model, first.eval) == (
        card["created_at"],
        "smollm2-135m",
        card["eval"],
    )
    assert (second.version, second.tenants, second.created_at, second.base_model) == (
        "v2",
        ["initech"],
        None,
        None,
    )
    assert listing["style"].to_json() == {
        "name": "style",
        "versions": [
            {
                "version": "v1",
                "path": str(tmp_path / "adapters" / "style" / "v1"),
                "created_at": None,
                "base_model": None,
                "eval": None,
                "tenants": [],
            }
        ],
    }
