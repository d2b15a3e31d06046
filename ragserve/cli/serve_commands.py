"""`ragserve up`: vLLM, the index and the chat API, started together and stopped together."""

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ragserve.cli.common import DataDirOption, QdrantUrlOption, cli_errors, err, make_settings
from ragserve.launch.serve import serve_until_stopped
from ragserve.service.config import load_config

__all__ = ["up"]


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
    cfg = load_config(config)
    settings = make_settings(data_dir, qdrant_url, port=port, host=host, vllm_url=vllm_url, replicas=replicas)
    serve_until_stopped(cfg, settings, _say_plain)


def _say_plain(line: str) -> None:
    """A line that may name files: printed as written, never read as rich markup, on one line however
    narrow the terminal, so URLs stay whole."""
    err.print(escape(line), highlight=False, soft_wrap=True)
