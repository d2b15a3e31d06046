"""Starting the stack from a config: the base model, vLLM (or a running one), every tenant's index, the API.

`ragserve up` (launch/serve.py) runs these steps in the foreground; `ragserve eval answers --config`
(launch/answer_eval.py) runs the same steps and serves the API on a loopback port in a thread, so its
questions take the real HTTP chat path; `ragserve adapters eval` (launch/adapter_eval.py) takes its vLLM from
here too.
"""

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import uvicorn
from fastapi import FastAPI

from ragserve.engine.base_model import served_base_name
from ragserve.engine.replica import ReplicaPlan
from ragserve.engine.replica_set import RayReplicas
from ragserve.engine.vllm_process import VllmProcess, VllmSpec, free_port, start_key
from ragserve.errors import ConfigError, UpstreamError
from ragserve.ingest.runtime import IngestRuntime
from ragserve.service.config import ServeConfig
from ragserve.service.library import upload_folders
from ragserve.service.limits import server_limits
from ragserve.settings import Settings

__all__ = [
    "Say",
    "VllmEndpoint",
    "check_ports_free",
    "index_tenants",
    "replicas_for",
    "serving_in_thread",
    "vllm_at_or_started",
    "vllm_for",
    "vllm_spec",
]


Say = Callable[[str], None]  # one line for the operator


class VllmEndpoint(NamedTuple):
    """The vLLM the API talks to: its URL, the key it wants, and the process if ragserve started it; or
    `replicas`, several on Ray Serve (then url is empty)."""

    url: str
    api_key: str | None
    process: VllmProcess | None
    replicas: RayReplicas | None = None


@contextmanager
def vllm_for(
    cfg: ServeConfig,
    settings: Settings,
    model_dir: Path,
    say: Say,
    port: int | None = None,
    log_name: str = "vllm.log",
) -> Iterator[VllmEndpoint]:
    """The vLLM to talk to: `settings.vllm_url` (with RAGSERVE_VLLM_API_KEY) if set, else one started here,
    behind its own key, and stopped on exit; or replicas on Ray Serve (replicas_for) when
    RAGSERVE_VLLM_URLS or more than one replica is asked for."""
    if settings.vllm_urls or settings.replicas > 1:
        with replicas_for(cfg, settings, model_dir, say) as replicas:
            yield VllmEndpoint("", None, None, replicas)
        return
    spec = vllm_spec(cfg, settings, model_dir, port if port is not None else settings.vllm_port)
    with vllm_at_or_started(settings.vllm_url, settings, spec, log_name, say) as endpoint:
        yield endpoint


@contextmanager
def vllm_at_or_started(
    url: str | None, settings: Settings, spec: VllmSpec, log_name: str, say: Say
) -> Iterator[VllmEndpoint]:
    """The one "a URL or start one": the vLLM at `url` (with RAGSERVE_VLLM_API_KEY), else `spec` started
    here behind a key of its own (RAGSERVE_VLLM_API_KEY, or a fresh random one), its log in the data dir's
    logs/, stopped on exit."""
    if url is not None:
        key = settings.vllm_api_key
        yield VllmEndpoint(url, key.get_secret_value() if key else None, None)
        return
    process = VllmProcess(
        replace(spec, api_key=start_key(settings.vllm_api_key)), settings.data_dir / "logs" / log_name
    )
    say(f"starting vLLM on {process.url} (log: {process.log_path})")
    with process.running():
        yield VllmEndpoint(process.url, process.api_key, process)


def vllm_spec(cfg: ServeConfig, settings: Settings, model_dir: Path, port: int) -> VllmSpec:
    """How a vLLM server of this config starts (each replica picks its own port and key)."""
    return VllmSpec(
        model_dir,
        served_base_name(cfg.model.base),
        port,
        settings.max_lora_rank,
        max_model_len=cfg.model.max_model_len,
        dtype=settings.vllm_dtype,
        max_loras=settings.max_loras,
        max_cpu_loras=2 * settings.max_loras,
        tool_call_parser=cfg.model.tool_call_parser,
    )


@contextmanager
def replicas_for(cfg: ServeConfig, settings: Settings, model_dir: Path, say: Say) -> Iterator[RayReplicas]:
    """vLLM replicas on Ray Serve: RAGSERVE_VLLM_URLS's running servers, one replica each, else
    `settings.replicas` servers started by their replicas (on this machine with a local Ray: they share its
    cores). Removed on exit."""
    if settings.vllm_url is not None and settings.vllm_urls:
        raise ConfigError("set RAGSERVE_VLLM_URL (one server) or RAGSERVE_VLLM_URLS (replicas), not both")
    key = settings.vllm_api_key.get_secret_value() if settings.vllm_api_key else None
    if settings.vllm_urls:
        plan = ReplicaPlan(
            settings.max_loras, settings.vllm_timeout_s, urls=tuple(settings.vllm_urls), api_key=key
        )
        count = len(settings.vllm_urls)
        say(f"vLLM replicas on Ray Serve: {', '.join(settings.vllm_urls)}")
    else:
        plan = ReplicaPlan(
            settings.max_loras,
            settings.vllm_timeout_s,
            spec=vllm_spec(cfg, settings, model_dir, 0),
            log_dir=settings.data_dir / "logs",
            per_node=settings.replicas if settings.ray_address is None else 1,
        )
        count = settings.replicas
        say(f"starting {count} vLLM replicas on Ray Serve (logs: {plan.log_dir}/vllm-replica-*.log)")
    replicas = RayReplicas.start(
        plan,
        count,
        settings.replica_max_ongoing,
        settings.replica_health_period_s,
        settings.replica_gpus,
        settings.ray_address,
    )
    try:
        yield replicas
    finally:
        replicas.shutdown()


def check_ports_free(settings: Settings) -> None:
    """ConfigError naming the setting if the API's or the metrics listener's port is taken (by another
    `ragserve up`, say): said before vLLM takes a minute to start, not as a failed start after it."""
    if settings.metrics_port == settings.port:
        raise ConfigError(
            f"RAGSERVE_METRICS_PORT is the API's port, {settings.port}: give the metrics their own"
        )
    for host, port, name in (
        (settings.host, settings.port, "RAGSERVE_PORT (--port)"),
        (settings.metrics_host, settings.metrics_port, "RAGSERVE_METRICS_PORT"),
    ):
        if port == 0:
            continue
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family) as probe:
            # As the servers bind: a port in TIME_WAIT is free to them.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise ConfigError(
                    f"{host}:{port} cannot be used ({exc.strerror or exc}): set {name}"
                ) from exc


def index_tenants(cfg: ServeConfig, settings: Settings, say: Say) -> None:
    """Re-indexes every tenant's docs folder, and every tenant's uploads: only what changed is embedded again.
    After a model or chunking change the new index is built beside the old one and goes live once all
    tenants are in it."""
    folders = {name: tenant.docs for name, tenant in cfg.tenants.items()}
    uploads = upload_folders(settings.documents_dir)
    required = [*folders, *uploads]
    with IngestRuntime.open(settings) as runtime:
        for name, folder in [*folders.items(), *uploads.items()]:
            report = runtime.reindexer().run(folder, name, tenants=required)
            counts = f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged"
            say(f"indexed {name}: {counts}, {len(report.skipped)} skipped{_INDEX_NOTES[report.index]}")
            for skipped in report.skipped:
                say(f"  skipped {skipped.path}: {skipped.reason}")


_INDEX_NOTES = {
    "updated": "",
    "building": " (into the new index: model or chunking changed)",
    "switched": "; the rebuilt index is live now",
}


@contextmanager
def serving_in_thread(
    app: FastAPI, settings: Settings | None = None, start_timeout_s: float = 120.0
) -> Iterator[str]:
    """Serves the app on a free loopback port in a thread, within the settings' connection limits if given
    (as `ragserve up` does); yields its base URL; shuts it down gracefully."""
    port = free_port()
    limits: dict[str, Any] = dict(server_limits(settings)) if settings is not None else {}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **limits))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise UpstreamError("the API did not start; see the messages above")
        time.sleep(0.1)
    try:
        httpx.get(f"{url}/healthz", timeout=5).raise_for_status()
        yield url
    finally:
        server.should_exit = True
        thread.join(30)
