"""`ragserve model prepare`: convert the bundled base model once, e.g. into a volume that vLLM mounts."""

from typing import Annotated

import typer

from ragserve.cli.common import DataDirOption, cli_errors, make_settings
from ragserve.engine.base_model import ensure_base_model
from ragserve.service.config import BUNDLED_BASE

__all__ = ["model_app"]

model_app = typer.Typer(help="The base LLM.", no_args_is_help=True)


@model_app.command("prepare")
@cli_errors
def prepare(
    base: Annotated[
        str, typer.Option("--base", help="The bundled model, or a local HF folder")
    ] = BUNDLED_BASE,
    data_dir: DataDirOption = None,
) -> None:
    """Convert the bundled SmolLM2 GGUF to safetensors under the data dir (once) and print its folder."""
    print(ensure_base_model(base, make_settings(data_dir, None).models_dir))
