"""A Qdrant server behind an API key: the index sends RAGSERVE_QDRANT_API_KEY on every call, checked against a
small stand-in server that refuses a request without it, as Qdrant does."""

from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from ragserve.errors import StoreUnavailableError
from ragserve.ingest.index import QdrantIndex
from ragserve.settings import Settings
from tests.support.servers import running_app

KEY = "qdrant-key-for-this-test"
# qdrant-client warns that a key goes over plain http (the stand-in's), and that a refused version check
# skipped the compatibility check.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _keyed_qdrant(seen: list[str | None]) -> FastAPI:
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/{path:path}")
    async def anything(path: str, request: Request) -> JSONResponse:
        given = request.headers.get("api-key")
        seen.append(given)
        if given != KEY:
            return JSONResponse({"status": {"error": "Must provide an API key"}}, 401)
        if path == "":  # the client's version check
            return JSONResponse({"title": "qdrant", "version": "1.16.3"})
        return JSONResponse({"result": {"collections": []}, "status": "ok", "time": 0.0})

    return app


@pytest.fixture(scope="module")
def qdrant() -> Iterator[tuple[str, list[str | None]]]:
    seen: list[str | None] = []
    with running_app(_keyed_qdrant(seen)) as url:
        yield url, seen


def test_the_index_sends_the_qdrant_api_key(qdrant: tuple[str, list[str | None]]) -> None:
    url, seen = qdrant
    seen.clear()
    index = QdrantIndex.connect(Settings(qdrant_url=url, qdrant_api_key=SecretStr(KEY)))
    try:
        index.ping()
    finally:
        index.close()
    assert seen and set(seen) == {KEY}


def test_without_the_key_the_server_refuses_and_the_error_says_so(
    qdrant: tuple[str, list[str | None]],
) -> None:
    url, seen = qdrant
    seen.clear()
    with pytest.raises(StoreUnavailableError, match="401"):
        QdrantIndex.connect(Settings(qdrant_url=url))
    assert None in seen
