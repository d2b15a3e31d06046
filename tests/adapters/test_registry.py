"""The registry on disk: names, versions, newest-by-default, atomic publishing, nothing outside its root."""

from pathlib import Path

import pytest

from ragserve.adapters.assignments import AssignmentStore
from ragserve.adapters.registry import AdapterRef, AdapterRegistry, check_safe_name
from ragserve.errors import AdapterInvalidError, AdapterNotFoundError
from ragserve.state.database import Database
from ragserve.state.tenants import TenantStore


def _version(root: Path, name: str, version: str) -> Path:
    path = root / name / version
    path.mkdir(parents=True)
    return path


@pytest.mark.parametrize(
    "unsafe",
    ["../escape", "/etc", "a/b", "Acme", "a\x00b", "x" * 65, ".hidden", "-dash", "a..b", "", "café", "a b"],
)
def test_unsafe_names_are_refused(unsafe: str) -> None:
    with pytest.raises(AdapterInvalidError):
        check_safe_name(unsafe, "name")
    with pytest.raises(AdapterInvalidError):
        AdapterRef.parse(unsafe)
    if unsafe:
        with pytest.raises(AdapterInvalidError):
            AdapterRef.parse(f"ok@{unsafe}")


def test_refs_parse_with_and_without_a_version() -> None:
    assert AdapterRef.parse("acme-style") == AdapterRef("acme-style", None)
    assert AdapterRef.parse("acme-style@v3") == AdapterRef("acme-style", "v3")
    assert str(AdapterRef("acme-style", "v3")) == "acme-style@v3"


def test_newest_version_by_number_not_by_text(tmp_path: Path) -> None:
    for version in ("v2", "v10", "v9"):
        _version(tmp_path, "style", version)
    registry = AdapterRegistry(tmp_path)
    assert [v.version for v in registry.versions("style")] == ["v2", "v9", "v10"]
    assert registry.resolve("style").version == "v10"
    assert registry.resolve("style@v9").served_name == "style--v9"
    assert registry.next_version("style") == "v11"


def test_missing_names_and_versions_are_not_found(tmp_path: Path) -> None:
    _version(tmp_path, "style", "v1")
    registry = AdapterRegistry(tmp_path)
    with pytest.raises(AdapterNotFoundError, match="no adapter named 'other'"):
        registry.resolve("other")
    with pytest.raises(AdapterNotFoundError, match="has no version 'v7'"):
        registry.resolve("style@v7")


def test_a_symlinked_version_leaving_the_registry_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "registry"
    (root / "style").mkdir(parents=True)
    (root / "style" / "v1").symlink_to(outside, target_is_directory=True)
    with pytest.raises(AdapterInvalidError, match="leaves the adapters folder"):
        AdapterRegistry(root).resolve("style@v1")


def test_publish_moves_a_finished_folder_in_as_the_next_version(tmp_path: Path) -> None:
    registry = AdapterRegistry(tmp_path)
    first = registry.staging_dir("style")
    (first / "adapter_config.json").write_text("{}")
    assert registry.publish("style", first).version == "v1"
    second = registry.publish("style", registry.staging_dir("style"))
    assert second.version == "v2"
    assert [v.version for v in registry.versions("style")] == ["v1", "v2"]  # staging folders never listed
    assert (tmp_path / "style" / "v1" / "adapter_config.json").is_file()


def test_assignments_persist_and_override_the_config(database: Database) -> None:
    for tenant in ("acme", "globex"):
        TenantStore(database).create(tenant, {}, None, "api")
    store = AssignmentStore(database)
    assert store.effective({"acme": "style@v1", "globex": ""}) == {"acme": "style@v1", "globex": ""}
    store.set("acme", "style@v2")
    store.set("globex", "")
    assert AssignmentStore(database).effective({"acme": "style@v1", "globex": "x"}) == {
        "acme": "style@v2",
        "globex": "",
    }


def test_a_bundled_adapter_is_published_as_the_first_version_when_first_asked_for(tmp_path: Path) -> None:
    bundled = tmp_path / "bundled" / "reader"
    bundled.mkdir(parents=True)
    (bundled / "adapter_config.json").write_text("{}")
    (bundled / "adapter_model.safetensors").write_bytes(b"weights")
    registry = AdapterRegistry(tmp_path / "registry", bundled=tmp_path / "bundled")
    assert registry.names() == []
    version = registry.resolve("reader")
    assert version.ref == "reader@v1"
    assert (version.path / "adapter_model.safetensors").read_bytes() == b"weights"
    assert registry.resolve("reader").path == version.path  # installed once, not again
    with pytest.raises(AdapterNotFoundError):
        registry.resolve("not-bundled")


def test_the_shipped_grounding_adapter_is_in_the_package(tmp_path: Path) -> None:
    version = AdapterRegistry(tmp_path).resolve("grounding")
    assert version.ref == "grounding@v1"
    card = version.card()
    assert card is not None and card.base_model == "smollm2-135m"
