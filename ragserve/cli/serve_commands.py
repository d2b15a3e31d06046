"""`ragserve up`: vLLM, the index and the chat API, started together and stopped together."""

import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ragserve.adapters.assignments import AssignmentStore
from ragserve.adapters.registry import AdapterRegistry
from ragserve.adapters.validation import AdapterLimits, BaseModelInfo, validate
from ragserve.cli.common import DataDirOption, QdrantUrlOption, cli_errors, err, make_settings
from ragserve.engine.base_model import ensure_base_model, served_base_name
from ragserve.engine.cpu_placement import api_cpus, pin_process
from ragserve.engine.vllm_process import VllmProcess
from ragserve.errors import RagserveError
from ragserve.service import registration
from ragserve.service.app import create_app
from ragserve.service.config import ServeConfig, load_config
from ragserve.service.exposure import check_safe_to_serve
from ragserve.service.limits import server_limits
from ragserve.service.stack import check_ports_free, index_tenants, vllm_for
from ragserve.settings import Settings

__all__ = ["up"]


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


@cli_errors
def up(
    config: Annotated[Path, typer.Option("--config", "-c", help="The ragserve.toml to serve")] = Path(
        "ragserve.toml"
    ),
    port: Annotated[int | None, typer.Option("--port", help="The API's port \\[default 8000]")] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="The API's address \\[default 127.0.0.1]")
    ] = None,
    vllm_url: Annotated[
        str | None, typer.Option("--vllm-url", help="Use this running vLLM server instead of starting one")
    ] = None,
    replicas: Annotated[
        int | None,
        typer.Option("--replicas", min=1, help="vLLM replicas to start, on Ray Serve \\[default 1: no Ray]"),
    ] = None,
    data_dir: DataDirOption = None,
    qdrant_url: QdrantUrlOption = None,
) -> None:
    """Start vLLM (unless --vllm-url), index every tenant's docs, then serve the OpenAI-compatible API."""
    import uvicorn

    cfg = load_config(config)
    settings = make_settings(data_dir, qdrant_url, port=port, host=host, vllm_url=vllm_url, replicas=replicas)
    check_safe_to_serve(cfg, settings, settings.host)
    check_ports_free(settings)
    signal.signal(signal.SIGTERM, _interrupt)  # until uvicorn installs its own: stop vLLM on the way out
    model_dir = ensure_base_model(cfg.model.base, settings.models_dir)
    _check_adapters(cfg, settings, model_dir)
    try:
        with vllm_for(cfg, settings, model_dir, err.print) as vllm:
            index_tenants(cfg, settings, _say_plain)
            _place_api(settings.api_cpus, vllm.process)
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
                err.print(
                    f"metrics for Prometheus on http://{where}/metrics (RAGSERVE_METRICS_PORT)",
                    soft_wrap=True,
                )
            err.print(
                f"serving on http://{settings.host}:{settings.port}/v1, "
                f"the playground on {reachable}/playground (Ctrl-C to stop)",
                soft_wrap=True,  # one line, however narrow the terminal: the URLs stay whole
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
        err.print("stopping")
    err.print("stopped")


def _say_plain(line: str) -> None:
    """A line that names files: printed as written, never read as rich markup."""
    err.print(escape(line), highlight=False, soft_wrap=True)


def _check_adapters(cfg: ServeConfig, settings: Settings, model_dir: Path) -> None:
    """Every tenant's adapter is validated before anything starts, so a bad one is a one-line error."""
    registry = AdapterRegistry(settings.adapters_root)
    base = BaseModelInfo.read(served_base_name(cfg.model.base), model_dir)
    limits = AdapterLimits.of(settings)
    for tenant, ref in AssignmentStore.in_data_dir(settings.data_dir).effective(cfg.adapters()).items():
        if ref:
            try:
                validate(registry.resolve(ref), base, limits)
            except RagserveError as exc:
                raise type(exc)(f"tenant {tenant}'s adapter {ref}: {exc}") from exc


def _place_api(setting: str, process: VllmProcess | None) -> None:
    """After indexing (which may use every core while vLLM idles), the API moves off vLLM's compute cores."""
    cpus = api_cpus(setting, process.pid if process is not None else None)
    if cpus:
        pin_process(cpus)
        where = "off vLLM's compute cores" if setting == "auto" else "as RAGSERVE_API_CPUS says"
        err.print(f"API on CPUs {','.join(str(c) for c in sorted(cpus))}, {where}")


def _reachable(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
