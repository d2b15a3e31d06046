"""One real vLLM CPU server per test session, with the bundled model; an adapter registry made here."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ragserve.engine.vllm_process import VllmProcess
from ragserve.ingest.embedding import DenseEmbedder
from ragserve.service.config import ModelConfig, ServeConfig, TenantConfig
from ragserve.service.state import ServiceState
from ragserve.settings import Settings
from tests.support.documents import write
from tests.support.models import make_lora
from tests.support.servers import ADMIN_KEY, serving

ADAPTER_REF = "acme-style@v1"
ADAPTER = "acme-style--v1"  # its served name
KEYS = {"acme": "acme-key", "globex": "globex-key"}


@pytest.fixture(scope="session")
def adapters_root(base_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry holding acme-style v1 and v2: two random LoRAs that visibly change the output."""
    root = tmp_path_factory.mktemp("adapters")
    for seed, version in enumerate(("v1", "v2")):
        make_lora(base_model_dir, root / "acme-style" / version, seed=seed)
    return root


@dataclass
class Service:
    url: str
    docs: dict[str, Path]
    data_dir: Path
    metrics_url: str  # its metrics listener, off the API's port
    state: ServiceState  # the app's own, for a test that must see inside it (its limiter)


def tenant_docs(root: Path) -> dict[str, Path]:
    acme, globex = root / "acme", root / "globex"
    write(acme, "battery.md", "# Battery\n\nThe Roadrunner R2 battery runs for 14 hours on one charge.")
    write(acme, "warranty.md", "# Warranty\n\nAcme robots carry a 3-year warranty.")
    write(globex, "refunds.md", "# Refunds\n\nGlobex refunds a damaged bag within 14 days of delivery.")
    write(globex, "warranty.md", "# Warranty\n\nGlobex grinders carry a 1-year warranty.")
    return {"acme": acme, "globex": globex}


def serve(
    root: Path,
    embedder: DenseEmbedder,
    base_model_dir: Path,
    vllm_url: str,
    adapters_root: Path,
    vllm_process: VllmProcess | None = None,
    tenant_max_tokens: int | None = None,
    **service_settings: object,
) -> Iterator[Service]:
    """A service on its own data dir: acme uses acme-style@v1 (unless reassigned), globex the base.
    With `vllm_process`, the service restarts that vLLM if it dies, as under `ragserve up`.
    `tenant_max_tokens`: each tenant's cap on an answer's tokens. Unsupported answers are only flagged."""
    docs = tenant_docs(root / "docs")
    adapters = {"acme": ADAPTER_REF, "globex": ""}
    config = ServeConfig(
        model=ModelConfig(max_model_len=2048, max_tokens=40),
        tenants={
            name: TenantConfig(
                api_key=KEYS[name],
                docs=path,
                system_prompt=f"You are the {name} assistant.",
                adapter=adapters[name],
                max_tokens=tenant_max_tokens,
                # Every token as vLLM makes it: these tests are about streams, limits and failures, and the
                # default policy holds a stream whole (test_grounded_answers covers the policies).
                on_unsupported="flag",
            )
            for name, path in docs.items()
        },
    )
    options: dict[str, Any] = {"admin_key": ADMIN_KEY, **service_settings}
    settings = Settings(data_dir=root / "data", adapters_dir=adapters_root, **options)
    with serving(
        config, settings, base_model_dir, vllm_url, embedder, indexed=docs, vllm_process=vllm_process
    ) as (url, app):
        yield Service(url, docs, root / "data", app.state.ragserve.metrics_url, app.state.ragserve)


def service_fixture(name: str, **options: Any) -> Any:
    """A module's service on the session's vLLM, with `serve`'s options."""

    @pytest.fixture(scope="module")
    def fixture(
        tmp_path_factory: pytest.TempPathFactory,
        embedder: DenseEmbedder,
        base_model_dir: Path,
        vllm: VllmProcess,
        adapters_root: Path,
    ) -> Iterator[Service]:
        root = tmp_path_factory.mktemp(name)
        yield from serve(root, embedder, base_model_dir, vllm.url, adapters_root, **options)

    return fixture


service = service_fixture("service")
