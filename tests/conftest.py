"""Every test gets its own data dir; the real packaged embedding model is loaded once per session."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
# Each service the tests start (in-process, or `ragserve up` inheriting this) gets a metrics port of its own.
os.environ["RAGSERVE_METRICS_PORT"] = "0"

from ragserve.engine.vllm_process import VllmProcess
from ragserve.ingest.embedding import DenseEmbedder
from ragserve.ingest.runtime import IngestRuntime
from ragserve.settings import Settings
from ragserve.state.database import Database
from tests.support.embedding import RememberingEmbedder
from tests.support.models import EarlyLlm
from tests.support.postgres import PostgresServer, postgres_server

# A test that uses the bundled LLM (a vLLM server, the converted model, training) is marked `llm`;
# `make test-fast` runs the others.
_LLM_FIXTURES = frozenset({"vllm", "own_vllm", "base_model_dir", "llm_in_data_dir"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _LLM_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.llm)
    # The tests that need no LLM first, in their order: the session's LLM and the vLLMs tests kill get ready
    # beside them (EarlyLlm). Then the tests that kill a vLLM, so those idle vLLMs are gone before others
    # start vLLMs of their own.
    items.sort(key=lambda item: (item.get_closest_marker("llm") is not None, not _kills_a_vllm(item)))


def _kills_a_vllm(item: pytest.Item) -> bool:
    return "own_vllm" in getattr(item, "fixturenames", ())


@pytest.fixture(scope="session", autouse=True)
def early_llm(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EarlyLlm | None]:
    """Starts the LLM's conversion and the vLLMs the selected tests will need, at once, in the background."""
    items = request.session.items
    if not any(item.get_closest_marker("llm") for item in items):  # marked at collection
        yield None
        return
    shared = any("vllm" in getattr(item, "fixturenames", ()) for item in items)
    llm = EarlyLlm(tmp_path_factory, shared_vllm=shared, own_vllms=sum(map(_kills_a_vllm, items)))
    try:
        yield llm
    finally:
        llm.close()


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> DenseEmbedder:
    """The packaged model, loaded once; each distinct text embedded once (tests/support/embedding.py)."""
    return RememberingEmbedder.load("all-MiniLM-L6-v2", tmp_path_factory.mktemp("models"))


def _early(llm: EarlyLlm | None) -> EarlyLlm:
    if llm is None:
        raise RuntimeError("early_llm saw no selected test that needs the LLM")
    return llm


@pytest.fixture(scope="session")
def base_model_dir(early_llm: EarlyLlm | None) -> Path:
    """The bundled LLM, converted once per session."""
    return _early(early_llm).model_dir()


@pytest.fixture(scope="session")
def vllm(early_llm: EarlyLlm | None) -> VllmProcess:
    """One real vLLM CPU server for the whole session, serving the bundled model with LoRA on."""
    return _early(early_llm).shared_vllm()


@pytest.fixture
def own_vllm(early_llm: EarlyLlm | None) -> Iterator[VllmProcess]:
    """A real vLLM CPU server of the test's own, which it may kill; stopped after the test."""
    process = _early(early_llm).own_vllm()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def llm_in_data_dir(data_dir: Path, base_model_dir: Path) -> Path:
    """The session's converted LLM where CLI commands look for it, so they do not convert it again."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "models").symlink_to(base_model_dir.parent, target_is_directory=True)
    return base_model_dir


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("RAGSERVE_DATA_DIR", str(path))
    for name in (
        "RAGSERVE_QDRANT_URL",
        "RAGSERVE_QDRANT_SHARD_NUMBER",
        "RAGSERVE_QDRANT_REPLICATION_FACTOR",
        "RAGSERVE_QDRANT_WRITE_CONSISTENCY_FACTOR",
        "RAGSERVE_QDRANT_CUSTOM_SHARDING",
        "RAGSERVE_CHUNK_TOKENS",
        "RAGSERVE_EMBEDDING_MODEL",
        "RAGSERVE_ADAPTERS_DIR",
        "RAGSERVE_ADMIN_KEY",  # `ragserve up` refuses a weak one, as a developer's shell may hold
        "RAGSERVE_DEMO",
        "RAGSERVE_HOST",
        "RAGSERVE_VLLM_URL",
        "RAGSERVE_VLLM_URLS",
        "RAGSERVE_REPLICAS",
        "RAGSERVE_RAY_ADDRESS",
    ):
        monkeypatch.delenv(name, raising=False)
    return path


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir)


@pytest.fixture
def runtime(settings: Settings, embedder: DenseEmbedder) -> Iterator[IngestRuntime]:
    with IngestRuntime.open(settings, embedder) as rt:  # the session's model, not a second load
        yield rt


@pytest.fixture
def shared_model(monkeypatch: pytest.MonkeyPatch, embedder: DenseEmbedder) -> None:
    """In-process CLI runs reuse the session's (real) model instead of loading it per command."""
    monkeypatch.setattr(DenseEmbedder, "load", classmethod(lambda cls, *a, **k: embedder))


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    path = tmp_path / "docs"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session (Debian's package); a database of its own per test."""
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[Database]:
    """A fresh, migrated state database: SQLite in the test's data dir, and a real PostgreSQL."""
    if request.param == "sqlite":
        url = Settings(data_dir=data_dir).state_url
    else:
        url = request.getfixturevalue("postgres").new_database()
    db = Database(url)
    db.migrate()
    try:
        yield db
    finally:
        db.dispose()
