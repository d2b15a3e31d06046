"""What anyone who reaches the API's port can learn, with or without a tenant's key: no tenant's name from the
metrics, no map of the admin API; and a path-like field that is not a plain path is a 400 naming it."""

import json
from typing import Any

import httpx
import pytest

from tests.service.conftest import KEYS, Service, service_fixture

ADMIN = {"Authorization": "Bearer admin-key"}
TENANT_KEYS = [{"Authorization": f"Bearer {key}"} for key in KEYS.values()]


def test_the_api_port_serves_no_metrics_and_the_listener_names_the_tenants(service: Service) -> None:
    for key in KEYS.values():  # each tenant is counted
        httpx.post(
            f"{service.url}/v1/retrieve",
            json={"query": "warranty"},
            headers={"Authorization": f"Bearer {key}"},
        ).raise_for_status()
    for headers in ({}, *TENANT_KEYS):
        public = httpx.get(f"{service.url}/metrics", headers=headers)
        assert public.status_code == 404
        assert not any(tenant in public.text for tenant in KEYS)
    assert service.metrics_url.startswith("http://127.0.0.1:")
    scraped = httpx.get(service.metrics_url).text
    assert all(f'tenant="{tenant}"' in scraped for tenant in KEYS)


def test_the_public_schema_leaves_the_admin_api_out_and_a_tenant_key_cannot_fetch_it(
    service: Service,
) -> None:
    public = httpx.get(f"{service.url}/openapi.json").json()
    assert "/v1/chat/completions" in public["paths"]
    text = json.dumps(public)
    assert "/admin" not in text and "/metrics" not in text and "Reindex" not in text
    assert httpx.get(f"{service.url}/docs").status_code == 200
    for headers in ({}, *TENANT_KEYS):
        refused = httpx.get(f"{service.url}/admin/openapi.json", headers=headers)
        assert refused.status_code == 401 and "paths" not in refused.text
    admin = httpx.get(f"{service.url}/admin/openapi.json", headers=ADMIN).json()
    assert {"/admin/reindex", "/admin/tenants/{tenant}/adapter"} <= set(admin["paths"])
    assert not any(path.startswith("/v1") for path in admin["paths"])


undocumented = service_fixture("undocumented", api_docs=False)


def test_api_docs_off_serves_neither_schema(undocumented: Service) -> None:
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert httpx.get(f"{undocumented.url}{path}").status_code == 404, path
    assert httpx.get(f"{undocumented.url}/admin/openapi.json", headers=ADMIN).status_code == 404


BAD_PATHS = {
    "NUL": "/tmp/\x00x",
    "lone surrogate": "/tmp/\ud800x",
    "control character": "/tmp/\x1bx",
    "dot-dot": "/srv/docs/../../etc",
}


def _admin_call(service: Service, field: str, value: str) -> tuple[str, str, dict[str, Any]]:
    if field == "docs":
        return "POST", f"{service.url}/admin/reindex", {"tenant": "acme", "docs": value}
    return "PUT", f"{service.url}/admin/tenants/acme/adapter", {"adapter": value}


@pytest.mark.parametrize("bad", BAD_PATHS.values(), ids=BAD_PATHS.keys())
@pytest.mark.parametrize("field", ["docs", "adapter"])
def test_a_path_like_field_that_is_no_plain_path_is_a_400_naming_it(
    service: Service, field: str, bad: str
) -> None:
    method, url, body = _admin_call(service, field, bad)
    raw = json.dumps(body).encode()  # ASCII: the surrogate travels as JSON's \ud800 escape
    response = httpx.request(method, url, content=raw, headers={**ADMIN, "Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == field, error


@pytest.mark.parametrize("field", ["docs", "adapter"])
def test_a_non_utf8_byte_in_a_path_like_field_is_a_400(service: Service, field: str) -> None:
    method, url, body = _admin_call(service, field, "/tmp/MARK")
    raw = json.dumps(body).encode().replace(b"MARK", b"\xff")
    response = httpx.request(method, url, content=raw, headers={**ADMIN, "Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert "not valid UTF-8" in response.json()["error"]["message"]
