"""Schemathesis against the app's own OpenAPI schema, with the real vLLM and index behind it: whatever a
client sends that the schema allows or nearly allows, no answer is a server error."""

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from tests.service.conftest import KEYS, Service, service_fixture

# A tenant cap of 8 answer tokens keeps every generated chat short (a larger ask is a 400).
fuzzed = service_fixture("fuzzed", tenant_max_tokens=8)


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
