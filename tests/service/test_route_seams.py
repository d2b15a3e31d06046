"""A route on its own, in milliseconds: the state and the tenant come through FastAPI's dependency overrides
(the same routes against the real state and vLLM: test_chat_api.py)."""

from fastapi import FastAPI
from fastapi.testclient import TestClient

from ragserve.errors import AuthError
from ragserve.service.deps import get_state, get_tenant
from ragserve.service.http_errors import install_error_handlers
from ragserve.service.routes import models


class _State:
    def models_for(self, tenant: str) -> dict[str, str]:
        return {"default": f"{tenant}-style--v2", "smollm2-135m": "smollm2-135m"}


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(models.router)
    app.dependency_overrides[get_state] = _State
    return app


def test_models_lists_what_the_callers_tenant_may_use() -> None:
    app = _app()
    app.dependency_overrides[get_tenant] = lambda: "acme"
    body = TestClient(app).get("/v1/models").json()
    assert [(m["id"], m["root"]) for m in body["data"]] == [
        ("default", "acme-style--v2"),
        ("smollm2-135m", "smollm2-135m"),
    ]


def test_a_domain_error_from_a_dependency_is_the_http_error_it_maps_to() -> None:
    def refuse() -> str:
        raise AuthError("invalid API key")

    app = _app()
    app.dependency_overrides[get_tenant] = refuse
    response = TestClient(app).get("/v1/models")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "invalid API key"
