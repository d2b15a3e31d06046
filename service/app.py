"""The app factory: clients are built in the lifespan, never at import time, so tests can swap them."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from ragserve import __version__
from ragserve.adapters.assignments import AssignmentStore
from ragserve.adapters.registry import AdapterRegistry
from ragserve.adapters.swap import AdapterSwitch
from ragserve.adapters.validation import AdapterLimits, BaseModelInfo
from ragserve.engine.base_model import served_base_name
from ragserve.engine.replica_set import OneVllm, Replicas
from ragserve.engine.vllm_client import VllmClient
from ragserve.engine.vllm_process import VllmProcess
from ragserve.engine.vllm_supervisor import VllmSupervisor
from ragserve.ingest.embedding import Embedder
from ragserve.ingest.runtime import IngestRuntime
from ragserve.service.config import ServeConfig, TenantSettings
from ragserve.service.feedback.store import FeedbackStore
from ragserve.service.http_errors import install_error_handlers
from ragserve.service.legacy_import import import_legacy_files
from ragserve.service.library import DocumentLibrary
from ragserve.service.limits import ConcurrencyLimiter, RequestBodyLimits
from ragserve.service.metrics import Metrics, MetricsListener, RequestMetrics
from ragserve.service.prompt import PromptBuilder
from ragserve.service.routes import (
    admin,
    admin_tenants,
    chat,
    documents,
    feedback,
    files,
    health,
    models,
    playground,
    responses,
    retrieve,
    vector_stores,
)
from ragserve.service.state import ServiceState
from ragserve.service.tenants import TenantDirectory
from ragserve.service.token_count import ChatTokenCounter
from ragserve.service.uploads import MULTIPART_OVERHEAD
from ragserve.service.vector_stores import VectorStores
from ragserve.settings import Settings
from ragserve.state.database import Database
from ragserve.state.documents import DocumentStore
from ragserve.state.responses import ResponseStore
from ragserve.state.tenants import TenantStore
from ragserve.state.vector_stores import VectorStoreStore

__all__ = ["create_app"]


def create_app(
    config: ServeConfig,
    settings: Settings,
    model_dir: Path,
    vllm_url: str,
    database: Database | None = None,
    embedder: Embedder | None = None,
    vllm_api_key: str | None = None,
    vllm_process: VllmProcess | None = None,
    replicas: Replicas | None = None,
) -> FastAPI:
    """The tenants are the state database's (`database`, else the settings'), where the config's are written
    at start; their adapters come from the persisted assignments, else their settings, and are loaded at
    start. `embedder`: one already loaded, else the settings'.
    `vllm_api_key`: what vLLM wants on /v1/* (ragserve.launch's vllm_for says which). The admin routes
    exist only when RAGSERVE_ADMIN_KEY is set and not blank: without a key they answer 404, never open.
    `vllm_process`: the vLLM that `ragserve up` started, started again if it dies; any other is watched.
    `replicas`: several vLLM replicas on Ray Serve (engine/replica_set.py), instead of the one at vllm_url."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await asyncio.to_thread(
            _build_state, config, settings, model_dir, vllm_url, database, embedder, vllm_api_key, replicas
        )
        watch: asyncio.Task[None] | None = None
        listener: MetricsListener | None = None
        try:
            loop = asyncio.get_running_loop()
            state.metrics.replicas.read = lambda: asyncio.run_coroutine_threadsafe(
                state.replicas.describe(), loop
            ).result(settings.readiness_timeout_s)
            listener = MetricsListener(state.metrics.registry, settings.metrics_host, settings.metrics_port)
            state.metrics_url = listener.url
            await state.adapters.start(
                {
                    t: s.adapter or config.model.default_adapter
                    for t, s in state.tenants.all_settings().items()
                }
            )
            state.tenants.on_change(lambda name, s: _tenant_changed(state, name, s))
            await state.library.resume()
            app.state.ragserve = state
            if isinstance(state.replicas, OneVllm):  # replicas on Ray Serve are replaced by Ray Serve
                supervisor = VllmSupervisor(
                    state.replicas.client,
                    vllm_process,
                    state.adapters.reload_all,
                    state.metrics.vllm_restarts.inc,
                )
                watch = asyncio.create_task(supervisor.run())
            yield
        finally:
            if watch is not None:
                watch.cancel()
                await asyncio.gather(watch, return_exceptions=True)
            if listener is not None:
                listener.close()
            await state.library.aclose()
            await state.adapters.aclose()
            await state.replicas.aclose()
            state.ingest.close()
            state.database.dispose()

    # The public schema describes what a tenant's key can call; the admin API's is its own, behind its key.
    docs: dict[str, Any] = {} if settings.api_docs else {"openapi_url": None, "docs_url": None}
    app = FastAPI(title="ragserve", version=__version__, lifespan=lifespan, redoc_url=None, **docs)
    install_error_handlers(app)
    for module in (
        chat,
        responses,
        retrieve,
        documents,
        files,
        vector_stores,
        feedback,
        models,
        health,
        playground,
    ):
        app.include_router(module.router)
    if settings.metrics_key is not None:
        app.include_router(health.metrics_router)
    if admin.enabled(settings):
        app.include_router(admin.router, include_in_schema=False)
        app.include_router(admin_tenants.router, include_in_schema=False)

    app.add_middleware(
        RequestBodyLimits,
        max_bytes=settings.max_body_bytes,
        timeout_s=settings.body_timeout_s,
        larger={
            path: settings.max_file_bytes + MULTIPART_OVERHEAD
            for path in (documents.UPLOAD_PATH, files.FILES_PATH)
        },
    )
    app.add_middleware(RequestMetrics)  # outermost, so it counts the body limits' 408 and 413 too
    return app


def _build_state(
    config: ServeConfig,
    settings: Settings,
    model_dir: Path,
    vllm_url: str,
    database: Database | None,
    embedder: Embedder | None,
    vllm_api_key: str | None,
    replicas: Replicas | None,
) -> ServiceState:
    database = database or Database(settings.state_url)
    database.migrate()
    tenants = TenantDirectory(TenantStore(database))
    tenants.sync_config(config)
    feedback = FeedbackStore(database, settings.feedback_max_bytes)
    import_legacy_files(database, settings, feedback)
    tenant_settings = tenants.all_settings()
    tokens = ChatTokenCounter.load(model_dir)
    ingest = IngestRuntime.open(settings, embedder)
    ingest.embedder  # noqa: B018 - load the model now, not on the first request
    base_name = served_base_name(config.model.base)
    if replicas is None:
        replicas = OneVllm(VllmClient(vllm_url, settings.vllm_timeout_s, api_key=vllm_api_key), base_name)
    switch = AdapterSwitch(
        replicas,
        AdapterRegistry(settings.adapters_root),
        BaseModelInfo.read(base_name, model_dir),
        AdapterLimits.of(settings),
        AssignmentStore(database),
        tenant_settings,
    )
    library = DocumentLibrary(DocumentStore(database), ingest, settings.documents_dir)
    return ServiceState(
        config=config,
        settings=settings,
        database=database,
        tenants=tenants,
        feedback=feedback,
        library=library,
        vector_stores=VectorStores(VectorStoreStore(database), library),
        responses=ResponseStore(database, settings.responses_max_bytes),
        ingest=ingest,
        retriever=ingest.retriever(),
        prompts=PromptBuilder(
            tokens.chat,
            config.model.max_model_len,
            config.prompt.context,
            config.prompt.instruction,
            count_each=tokens.each,
        ),
        replicas=replicas,
        base_name=base_name,
        adapters=switch,
        metrics=Metrics(),
        limiter=ConcurrencyLimiter(
            settings.max_concurrency, {name: t.max_concurrency for name, t in tenant_settings.items()}
        ),
    )


def _tenant_changed(state: ServiceState, name: str, settings: TenantSettings | None) -> None:
    """A tenant created, changed or deleted while the service runs, on the event loop."""
    if settings is None:
        state.limiter.set_tenant(name, None, deleted=True)
        state.adapters.remove_tenant(name)
        return
    state.limiter.set_tenant(name, settings.max_concurrency)
    state.adapters.add_tenant(name)
