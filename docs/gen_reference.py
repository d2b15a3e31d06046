"""The reference pages, generated from the code at every `mkdocs build` (mkdocs-gen-files), never written by
hand: the CLI from its Typer app, the HTTP API from the app's OpenAPI schema, the settings from `Settings`
and the config file's models. A setting, a route or a flag added to the code is in the next build."""

import json
import os
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mkdocs_gen_files
import typer
from fastapi import FastAPI
from openapidocs.mk.v3 import OpenAPIV3DocumentationHandler
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from typer.cli import get_docs_for_click

from ragserve.cli.main import app as cli_app
from ragserve.service.app import create_app
from ragserve.service.config import ModelConfig, PromptConfig, TenantConfig, load_config
from ragserve.service.routes import admin, admin_tenants
from ragserve.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = ROOT / "examples" / "ragserve.toml"


def cli_page() -> str:
    command = typer.main.get_command(cli_app)
    body = get_docs_for_click(obj=command, ctx=typer.Context(command), name="ragserve", title="CLI")
    intro = (
        "Every command of `ragserve`, generated from its Typer app (`ragserve --help` and each command's "
        "`--help` print the same).\n\n"
    )
    title, _, rest = body.partition("\n\n")
    return f"{title}\n\n{intro}{rest}"


def _schema_markdown(app: FastAPI) -> str:
    # The handler reads a plain JSON document, as an OpenAPI file on disk would be.
    return str(OpenAPIV3DocumentationHandler(json.loads(json.dumps(app.openapi())), style="MKDOCS").write())


def http_page() -> str:
    settings = Settings(data_dir=ROOT / ".data", admin_key=None, api_docs=True)
    public = create_app(load_config(DEMO_CONFIG), settings, ROOT, "http://127.0.0.1:1")
    admin_app = FastAPI(title="ragserve admin API", version=public.version)
    admin_app.include_router(admin.router)
    admin_app.include_router(admin_tenants.router)
    return (
        "# HTTP API\n\n"
        "Generated from the app's own OpenAPI schema. A running service serves the same at `/openapi.json`"
        " and `/docs` (`RAGSERVE_API_DOCS`), and the admin API's at `/admin/openapi.json`, to the admin key."
        ' Every error has OpenAI\'s shape: `{"error": {"message", "type", "param", "code"}}`.\n\n'
        "## The tenants' API\n\n"
        f"{_demote(_schema_markdown(public))}\n\n"
        "## The admin API\n\n"
        "Only when `RAGSERVE_ADMIN_KEY` is set; without it these routes answer 404.\n\n"
        f"{_demote(_schema_markdown(admin_app))}\n"
    )


def _demote(markdown: str) -> str:
    """The handler's headings start at level 1; they sit under this page's level-2 sections."""
    return "\n".join(f"##{line}" if line.startswith("#") else line for line in markdown.splitlines())


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) is typing.Literal:
        return " \\| ".join(f'"{value}"' for value in typing.get_args(annotation))
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return " \\| ".join(_type_name(arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return "unset"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default_factory is list:
        return "`[]`"
    if field.default_factory is not None:
        return "(computed at start)"
    if field.default is PydanticUndefined:
        return "required"
    if field.default is None:
        return "unset"
    value = field.default
    return f"`{json.dumps(value) if isinstance(value, str | bool) else value}`"


def _rows(model: type[BaseModel], name_of: Callable[[str], str]) -> Iterator[str]:
    yield "| name | type | default | what it does |"
    yield "|---|---|---|---|"
    for name, field in model.model_fields.items():
        if name == "path":
            continue
        text = " ".join((field.description or "").split())
        yield f"| `{name_of(name)}` | {_type_name(field.annotation)} | {_default(field)} | {text} |"


def settings_page() -> str:
    env_prefix = Settings.model_config.get("env_prefix", "")
    tables: list[tuple[str, type[BaseModel]]] = [
        ("`[model]`", ModelConfig),
        ("`[prompt]`", PromptConfig),
        ("`[tenants.NAME]`, one table a tenant", TenantConfig),
    ]
    lines = [
        "# Settings",
        "",
        "Generated from the code: `Settings` (`ragserve/settings.py`) and the config file's models"
        " (`service/config.py`).",
        "",
        "## Environment variables",
        "",
        "One `Settings` class reads them for indexing, the service, vLLM and the adapters alike. Secrets live"
        " here, never in the config file. An invalid value stops a command with a one-line error naming it.",
        "",
        *_rows(Settings, lambda name: f"{env_prefix}{name.upper()}"),
        "",
        "## The config file, `ragserve.toml`",
        "",
        "`ragserve up --config FILE`. Refused at start, with the file and the key named: unknown keys,"
        " duplicate keys, a docs folder that is missing, a key environment variable that is unset, two"
        " tenants with one key, a bad tenant name, and a value outside its range or its choices.",
        "",
    ]
    for title, model in tables:
        lines += [f"### {title}", "", *_rows(model, str), ""]
    return "\n".join(lines)


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for path, text in (
        ("reference/cli.md", cli_page()),
        ("reference/http-api.md", http_page()),
        ("reference/settings.md", settings_page()),
    ):
        with mkdocs_gen_files.open(path, "w") as page:
            page.write(text)


main()
