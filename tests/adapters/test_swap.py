"""The per-tenant hot swap against a fake LoRA server: load before switching, leases that keep an old version
loaded until its last request ends, and a reload when the server has forgotten an adapter. (The same swap
against the real vLLM, under load: tests/service/test_hot_swap.py.)"""

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from ragserve.adapters.assignments import AssignmentStore
from ragserve.adapters.registry import AdapterRegistry
from ragserve.adapters.swap import AdapterSwitch
from ragserve.adapters.validation import CONFIG_FILE, WEIGHTS_FILE, AdapterLimits, BaseModelInfo
from ragserve.errors import AdapterInvalidError
from ragserve.state.database import Database
from ragserve.state.tenants import TenantStore, key_sha256

MODULE = "model.layers.0.self_attn.q_proj"
BASE = BaseModelInfo("tiny", Path("tiny"), {MODULE: (4, 4)})


class FakeLoraServer:
    """Records what was loaded; `forget` plays a vLLM restart."""

    def __init__(self) -> None:
        self.loaded: set[str] = set()
        self.calls: list[str] = []

    async def load_lora(self, name: str, path: Path) -> None:
        self.calls.append(f"load {name}")
        self.loaded.add(name)

    async def unload_lora(self, name: str) -> None:
        self.calls.append(f"unload {name}")
        self.loaded.discard(name)

    def forget(self) -> None:
        self.loaded.clear()


def _publish(root: Path, name: str, version: str, rank: int = 2) -> None:
    folder = root / name / version
    folder.mkdir(parents=True)
    config = {"peft_type": "LORA", "r": rank, "target_modules": ["q_proj"], "base_model_name_or_path": "tiny"}
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    prefix = f"base_model.model.{MODULE}"
    weights = {
        f"{prefix}.lora_A.weight": np.zeros((rank, 4), np.float32),
        f"{prefix}.lora_B.weight": np.zeros((4, rank), np.float32),
    }
    save_file(weights, str(folder / WEIGHTS_FILE))


@pytest.fixture
def database(tmp_path: Path) -> Database:
    root = tmp_path / "registry"
    _publish(root, "style", "v1")
    _publish(root, "style", "v2")
    _publish(root, "huge", "v1", rank=64)
    database = Database(f"sqlite:///{tmp_path / 'state.db'}")
    database.migrate()
    for tenant in ("acme", "globex"):
        TenantStore(database).create(tenant, {}, None, "api")
    return database


def _process(database: Database, registry_root: Path) -> tuple[AdapterSwitch, FakeLoraServer]:
    """What one API process holds: its switch, over the shared database, and its vLLM."""
    server = FakeLoraServer()
    registry = AdapterRegistry(registry_root, bundled=None)
    store = AssignmentStore(database)
    return AdapterSwitch(server, registry, BASE, AdapterLimits(), store, ["acme", "globex"]), server


@pytest.fixture
def switch(database: Database, tmp_path: Path) -> tuple[AdapterSwitch, FakeLoraServer]:
    return _process(database, tmp_path / "registry")


def test_a_swap_loads_first_and_unloads_the_old_version_after_its_last_request(
    switch: tuple[AdapterSwitch, FakeLoraServer],
) -> None:
    adapters, server = switch

    async def scenario() -> None:
        await adapters.assign("acme", "style@v1")
        async with adapters.using("style--v1"):  # a request on v1 is in flight across the swap
            await adapters.assign("acme", "style@v2")
            assert adapters.current("acme").served_name == "style--v2"  # type: ignore[union-attr]
            await asyncio.sleep(0)
            assert server.loaded == {"style--v1", "style--v2"}, "v1 was unloaded under a request"
        await adapters.aclose()  # the unload scheduled when the lease ended

    asyncio.run(scenario())
    assert server.calls == ["load style--v1", "load style--v2", "unload style--v1"]
    assert adapters.assignments() == {"acme": "style@v2", "globex": ""}


def test_a_refused_adapter_leaves_the_tenant_where_it_was(
    switch: tuple[AdapterSwitch, FakeLoraServer],
) -> None:
    adapters, server = switch

    async def scenario() -> None:
        await adapters.assign("acme", "style@v1")
        with pytest.raises(AdapterInvalidError, match="rank 64 is above"):
            await adapters.assign("acme", "huge")

    asyncio.run(scenario())
    assert adapters.assignments()["acme"] == "style@v1"
    assert server.loaded == {"style--v1"}


def test_an_assignment_made_in_another_process_is_followed_on_the_tenants_next_request(
    database: Database, tmp_path: Path
) -> None:
    (one, _), (other, other_server) = (_process(database, tmp_path / "registry") for _ in range(2))
    key_lookup, store = TenantStore(database), AssignmentStore(database)
    issued = key_lookup.issue_key("acme", "app", None)

    async def scenario() -> None:
        await one.assign("acme", "style@v2")
        row = key_lookup.tenant_for_key(key_sha256(issued.key))  # what the other's next request reads
        assert row is not None and row.assigned == "style@v2"
        await other.follow("acme", row.assigned)
        assert other.assignments() == {"acme": "style@v2", "globex": ""}
        assert other_server.loaded == {"style--v2"}
        await other.follow("acme", row.assigned)  # no change: nothing loaded again
        assert other_server.calls == ["load style--v2"]
        # A version this process refuses is logged once; the tenant stays where it was here.
        store.set("acme", "huge@v1")
        await other.follow("acme", "huge@v1")
        await other.follow("acme", "huge@v1")
        assert other.assignments()["acme"] == "style@v2"
        assert other_server.calls == ["load style--v2"]
        store.set("acme", "")
        await other.follow("acme", "")  # back to the base model
        assert other.assignments()["acme"] == ""

    asyncio.run(scenario())


def test_a_read_from_before_a_swap_never_switches_the_tenant_back(
    switch: tuple[AdapterSwitch, FakeLoraServer],
) -> None:
    """A request read acme's assignment (v1) from the database, then waited while a swap to v2 was persisted
    and made here: its stale read is not followed, or the tenant would flip back to v1 and unload v2."""
    adapters, server = switch

    async def scenario() -> None:
        await adapters.assign("acme", "style@v1")
        read_before_the_swap = "style@v1"
        await adapters.assign("acme", "style@v2")
        await adapters.follow("acme", read_before_the_swap)
        await adapters.aclose()

    asyncio.run(scenario())
    assert adapters.assignments()["acme"] == "style@v2"
    assert server.calls == ["load style--v1", "load style--v2", "unload style--v1"]


def test_an_adapter_the_server_forgot_is_loaded_again_and_a_stranger_is_not(
    switch: tuple[AdapterSwitch, FakeLoraServer],
) -> None:
    adapters, server = switch

    async def scenario() -> tuple[bool, bool]:
        await adapters.assign("globex", "style")
        server.forget()
        return await adapters.reload("style--v2"), await adapters.reload("someone-else--v1")

    assert asyncio.run(scenario()) == (True, False)
    assert server.loaded == {"style--v2"}


def test_after_a_restart_every_tenants_adapter_is_loaded_again_and_no_retired_one(
    switch: tuple[AdapterSwitch, FakeLoraServer],
) -> None:
    adapters, server = switch

    async def scenario() -> int:
        await adapters.assign("acme", "style@v1")
        await adapters.assign("globex", "style@v1")
        await adapters.assign("acme", "style@v2")  # v1 stays: globex still uses it
        await adapters.aclose()
        server.forget()
        return await adapters.reload_all()

    assert asyncio.run(scenario()) == 2
    assert server.loaded == {"style--v1", "style--v2"}
