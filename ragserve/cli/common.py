"""What every command shares: the data-dir and Qdrant options, and turning domain errors into CLI errors."""

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from ragserve.errors import ConfigError, RagserveError, validation_problems
from ragserve.settings import Settings

__all__ = [
    "DataDirOption",
    "JsonOption",
    "QdrantUrlOption",
    "TenantOption",
    "cli_errors",
    "counted_progress",
    "err",
    "make_settings",
    "print_error",
]

P = ParamSpec("P")
R = TypeVar("R")

err = Console(stderr=True)

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Where ragserve keeps its data \\[env RAGSERVE_DATA_DIR; default: .data/ here or above, if "
        "ragserve used it, else per user]",
    ),
]
QdrantUrlOption = Annotated[
    str | None,
    typer.Option(
        "--qdrant-url", help="A Qdrant server instead of the embedded store \\[env RAGSERVE_QDRANT_URL]"
    ),
]
TenantOption = Annotated[str, typer.Option("--tenant", "-t", help="The tenant whose documents these are")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines instead of tables")]


def make_settings(data_dir: Path | None, qdrant_url: str | None, **options: Any) -> Settings:
    """Settings from the environment, with the command-line options given (not None) taking precedence (an
    invalid value is a one-line ConfigError, not a traceback), and a line on stderr naming the data dir."""
    given = {"data_dir": data_dir, "qdrant_url": qdrant_url, **options}
    try:
        settings = Settings(**{name: value for name, value in given.items() if value is not None})
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {validation_problems(exc)}") from None
    err.print(escape(f"data dir: {settings.data_dir}"), style="dim", highlight=False, soft_wrap=True)
    return settings


def cli_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turns a RagserveError into a one-line message on stderr and exit status 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except RagserveError as exc:
            print_error(exc)
            raise typer.Exit(1) from None

    return wrapper


def print_error(exc: RagserveError) -> None:
    """One line on stderr: `error: <the domain error's message>`."""
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)


def counted_progress(quiet: bool, unit: str, transient: bool = False) -> Progress:
    """A bar on stderr that counts done units ("12/40 steps"); off when the command prints JSON (or, as the
    caller says, when stderr is not a terminal); a transient one is gone when it is done."""
    counted = TextColumn(f"{{task.completed}}/{{task.total}} {unit}")
    return Progress(
        TextColumn("{task.description}"), BarColumn(), counted, TimeRemainingColumn(), console=err,
        disable=quiet, transient=transient,
    )  # fmt: skip
