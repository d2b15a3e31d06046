"""The app under uvicorn on a loopback port, built and served in one place: every test that serves the app
goes through `serving`, as `ragserve up` goes through the launch sequence."""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from ragserve.engine.vllm_process import free_port
from ragserve.ingest.embedding import DenseEmbedder
from ragserve.launch.stack import serving_in_thread as running_app
from ragserve.service.app import create_app
from ragserve.service.config import ServeConfig
from ragserve.settings import Settings
from tests.support.chat import bearer

__all__ = ["ADMIN_KEY", "free_port", "reindex", "running_app", "serving"]

ADMIN_KEY = "admin-key"


def reindex(url: str, tenant: str, timeout: float = 120) -> None:
    """Re-indexes the tenant's configured docs through the running service's admin API."""
    response = httpx.post(
        f"{url}/admin/reindex", json={"tenant": tenant}, headers=bearer(ADMIN_KEY), timeout=timeout
    )
    response.raise_for_status()


@contextmanager
def serving(
    config: ServeConfig,
    settings: Settings,
    model_dir: Path,
    vllm_url: str,
    embedder: DenseEmbedder,
    indexed: Iterable[str] = (),
    **app_options: Any,
) -> Iterator[tuple[str, FastAPI]]:
    """`create_app` on the session's embedder, served within the settings' connection limits; the tenants in
    `indexed` are re-indexed through the admin API first. Yields the base URL and the app."""
    app = create_app(config, settings, model_dir, vllm_url, embedder=embedder, **app_options)
    with running_app(app, settings) as url:
        for tenant in indexed:
            reindex(url, tenant)
        yield url, app
