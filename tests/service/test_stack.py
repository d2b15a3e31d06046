from pathlib import Path

from ragserve.launch.stack import index_tenants
from ragserve.service.config import ServeConfig, TenantConfig
from ragserve.settings import Settings
from tests.service.conftest import KEYS, tenant_docs


def test_up_indexes_every_tenant_past_a_hostile_document_and_says_what_it_skipped(
    shared_model: None, settings: Settings, tmp_path: Path
) -> None:
    docs = tenant_docs(tmp_path / "docs")
    (docs["acme"] / "deep.html").write_text("<div>" * 100_000 + "x" + "</div>" * 100_000)
    (docs["acme"] / "globex").symlink_to(docs["globex"], target_is_directory=True)
    tenants = {name: TenantConfig(api_key=KEYS[name], docs=folder) for name, folder in docs.items()}
    said: list[str] = []
    index_tenants(ServeConfig(tenants=tenants), settings, said.append)
    assert said == [
        "indexed acme: 2 added, 0 updated, 0 unchanged, 2 skipped",
        "  skipped deep.html: HTML nested 100000 elements deep (the limit is 512)",
        "  skipped globex: symlink to a folder outside the docs folder (symlinks are not followed)",
        "indexed globex: 2 added, 0 updated, 0 unchanged, 0 skipped",
    ]
