"""Schemathesis against the app's own OpenAPI schema, with the real vLLM and index behind it: whatever a
client sends that the schema allows or nearly allows, no answer is a server error."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from ragserve.engine.vllm_process import VllmProcess
from ragserve.ingest.embedding import DenseEmbedder
from tests.service.conftest import KEYS, Service, serve


@pytest.fixture(scope="module")
def fuzzed(
    tmp_path_factory: pytest.TempPathFactory,
    embedder: DenseEmbedder,
    base_model_dir: Path,
    vllm: VllmProcess,
    adapters_root: Path,
) -> Iterator[Service]:
    """A tenant cap of 8 answer tokens keeps every generated chat short (a larger ask is a 400)."""
    root = tmp_path_factory.mktemp("fuzzed")
    yield from serve(root, embedder, base_model_dir, vllm.url, adapters_root, tenant_max_tokens=8)


def test_no_response_is_a_server_error(fuzzed: Service) -> None:
    """Each operation of the schema, 30 generated requests each (schemathesis's strategies, run by hypothesis
    here rather than through its pytest plugin)."""
    schema = schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def call(case: Any) -> None:
            key = "admin-key" if case.path.startswith("/admin") else KEYS["acme"]
            response = case.call(headers={"Authorization": f"Bearer {key}"}, timeout=120)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.path} {case.body!r:.300} -> {response.text[:300]}")

        call()
    assert not failures, failures
