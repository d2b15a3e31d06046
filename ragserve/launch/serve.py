"""`ragserve up`: vLLM, the index and the chat API, started together in this order and stopped together.

Everything that can be refused is refused before vLLM's minute of start-up: an open exposure, a taken port,
a tenant's adapter that fails validation. SIGTERM stops it as Ctrl-C does: uvicorn drains the requests in
flight, then vLLM is stopped on the way out.
"""

import signal
from pathlib import Path
from typing import Any

from ragserve.adapters.assignments import AssignmentStore
from ragserve.adapters.registry import AdapterRegistry
from ragserve.adapters.validation import validate_on_base
from ragserve.engine.base_model import ensure_base_model, served_base_name
from ragserve.engine.cpu_placement import api_cpus, pin_process
from ragserve.engine.vllm_process import VllmProcess
from ragserve.errors import RagserveError
from ragserve.launch import registration
from ragserve.launch.exposure import check_safe_to_serve
from ragserve.launch.stack import Say, check_ports_free, index_tenants, vllm_for
from ragserve.service.app import create_app
from ragserve.service.config import ServeConfig
from ragserve.service.limits import server_limits
from ragserve.settings import Settings
from ragserve.state.database import Database

__all__ = ["serve_until_stopped"]


def serve_until_stopped(cfg: ServeConfig, settings: Settings, say: Say) -> None:
    """Checks, converts the base model, starts vLLM (unless a URL is set), indexes every tenant, then serves
    the API in the foreground until Ctrl-C or SIGTERM. `say`: a line for the operator, printed as written."""
    import uvicorn

    check_safe_to_serve(cfg, settings, settings.host)
    check_ports_free(settings)
    signal.signal(signal.SIGTERM, _interrupt)  # until uvicorn installs its own: stop vLLM on the way out
    model_dir = ensure_base_model(cfg.model.base, settings.models_dir)
    _check_adapters(cfg, settings, model_dir)
    try:
        with vllm_for(cfg, settings, model_dir, say) as vllm:
            index_tenants(cfg, settings, say)
            _place_api(settings.api_cpus, vllm.process, say)
            app = create_app(
                cfg,
                settings,
                model_dir,
                vllm.url,
                vllm_api_key=vllm.api_key,
                vllm_process=vllm.process,
                replicas=vllm.replicas,
            )
            reachable = f"http://{_reachable(settings.host)}:{settings.port}"
            if settings.metrics_port:  # 0 (any free port) is for tests
                where = f"{_reachable(settings.metrics_host)}:{settings.metrics_port}"
                say(f"metrics for Prometheus on http://{where}/metrics (RAGSERVE_METRICS_PORT)")
            say(
                f"serving on http://{settings.host}:{settings.port}/v1, "
                f"the playground on {reachable}/playground (Ctrl-C to stop)"
            )
            registration.record(settings.data_dir, reachable)
            try:
                uvicorn.run(
                    app,
                    host=settings.host,
                    port=settings.port,
                    timeout_graceful_shutdown=30,
                    log_level="warning",
                    **server_limits(settings),
                )
            finally:
                registration.clear(settings.data_dir)
    except KeyboardInterrupt:
        say("stopping")
    say("stopped")


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def _check_adapters(cfg: ServeConfig, settings: Settings, model_dir: Path) -> None:
    """Every tenant's adapter is validated before anything starts, so a bad one is a one-line error."""
    registry = AdapterRegistry(settings.adapters_root)
    base_name = served_base_name(cfg.model.base)
    for tenant, ref in AssignmentStore(Database.of(settings)).effective(cfg.adapters()).items():
        if ref:
            try:
                validate_on_base(registry.resolve(ref), base_name, model_dir, settings)
            except RagserveError as exc:
                raise type(exc)(f"tenant {tenant}'s adapter {ref}: {exc}") from exc


def _place_api(setting: str, process: VllmProcess | None, say: Say) -> None:
    """After indexing (which may use every core while vLLM idles), the API moves off vLLM's compute cores."""
    cpus = api_cpus(setting, process.pid if process is not None else None)
    if cpus:
        pin_process(cpus)
        where = "off vLLM's compute cores" if setting == "auto" else "as RAGSERVE_API_CPUS says"
        say(f"API on CPUs {','.join(str(c) for c in sorted(cpus))}, {where}")


def _reachable(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
