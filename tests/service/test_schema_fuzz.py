"""Schemathesis against the app's own OpenAPI schemas, the public one and the admin API's, with the real vLLM
and index behind them: whatever a client sends that a schema allows or nearly allows, no answer is a server
error."""

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from tests.service.conftest import KEYS, Service, service_fixture

# A tenant cap of 8 answer tokens keeps every generated chat short (a larger ask is a 400).
fuzzed = service_fixture("fuzzed", tenant_max_tokens=8)


@pytest.mark.parametrize(
    ("schema_path", "key"), [("/openapi.json", KEYS["acme"]), ("/admin/openapi.json", "admin-key")]
)
def test_no_response_is_a_server_error(fuzzed: Service, schema_path: str, key: str) -> None:
    """Each operation of the schema, 30 generated requests each (schemathesis's strategies, run by hypothesis
    here rather than through its pytest plugin)."""
    auth = {"Authorization": f"Bearer {key}"}
    schema = schemathesis.openapi.from_url(f"{fuzzed.url}{schema_path}", headers=auth)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def call(case: Any) -> None:
            response = case.call(base_url=fuzzed.url, headers=auth, timeout=120)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.path} {case.body!r:.300} -> {response.text[:300]}")

        call()
    assert operations >= 5
    assert not failures, failures
