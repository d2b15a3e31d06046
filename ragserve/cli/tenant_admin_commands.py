"""`ragserve tenants list|create|set|delete|keys|issue-key|revoke-key`: tenants and their keys, through the
running service's admin API when there is one (so it applies them live), else on the state database."""

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from ragserve.cli.common import DataDirOption, JsonOption, cli_errors, make_settings
from ragserve.cli.via_service import admin_request, running_service
from ragserve.errors import InvalidRequestError
from ragserve.ingest.runtime import IngestRuntime
from ragserve.ingest.tenancy import check_tenant
from ragserve.service.config import TenantSettings
from ragserve.service.erasure import erase_tenant
from ragserve.service.tenants import TenantDirectory
from ragserve.settings import Settings
from ragserve.state.database import Database
from ragserve.state.tenants import TenantStore

__all__ = ["register"]

out = Console()
_TIMEOUT_S = 300
SystemPrompt = Annotated[
    str | None, typer.Option("--system-prompt", help="The system prompt above the context")
]
K = Annotated[int | None, typer.Option("--k", min=0, max=50, help="Blocks retrieved per request")]
MaxTokens = Annotated[
    int | None, typer.Option("--max-tokens", min=1, help="The longest answer it may ask for")
]
Concurrency = Annotated[int | None, typer.Option("--max-concurrency", min=1, help="Its requests in flight")]
Policy = Annotated[
    Literal["flag", "refuse", "quote"] | None,
    typer.Option("--on-unsupported", help="What an answer the grounding check finds unsupported becomes"),
]
Mode = Annotated[Literal["generate", "quote"] | None, typer.Option("--answer-mode", help="Generate or quote")]


def register(app: typer.Typer) -> None:
    for name, command in (
        ("list", list_tenants),
        ("create", create),
        ("set", set_),
        ("delete", delete),
        ("keys", keys),
        ("issue-key", issue_key),
        ("revoke-key", revoke_key),
    ):
        app.command(name)(cli_errors(command))


def _directory(settings: Settings) -> TenantDirectory:
    return TenantDirectory(TenantStore(Database.of(settings)))


def _admin(
    settings: Settings, method: str, path: str, body: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The running service's answer, or None when no service uses this data dir."""
    url = running_service(settings)
    if url is None:
        return None
    return admin_request(settings, url, method, f"/admin{path}", body or {}, timeout_s=_TIMEOUT_S)


def _print(data: Any, json_out: bool, line: str) -> None:
    if json_out:
        typer.echo(json.dumps(data))
    else:
        out.print(line, highlight=False, soft_wrap=True)


def _settings_of(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def list_tenants(data_dir: DataDirOption = None, json_out: JsonOption = False) -> None:
    """Every tenant, where it comes from (the config file or the admin API), and its settings."""
    settings = make_settings(data_dir, None)
    answer = _admin(settings, "GET", "/tenants")
    tenants = answer["tenants"] if answer else [t.to_json() for t in _directory(settings).all()]
    if json_out:
        typer.echo(json.dumps({"tenants": tenants}))
        return
    table = Table("tenant", "source", "docs", "adapter", "k", "answer mode")
    for t in tenants:
        table.add_row(
            t["name"],
            t["source"],
            t["docs"] or "(uploads)",
            t["adapter"] or "-",
            str(t["k"]),
            t["answer_mode"],
        )
    out.print(table)


def create(
    name: Annotated[str, typer.Argument(help="The new tenant's name")],
    system_prompt: SystemPrompt = None,
    k: K = None,
    max_tokens: MaxTokens = None,
    max_concurrency: Concurrency = None,
    on_unsupported: Policy = None,
    answer_mode: Mode = None,
    no_key: Annotated[bool, typer.Option("--no-key", help="Issue no key now")] = False,
    data_dir: DataDirOption = None,
    json_out: JsonOption = False,
) -> None:
    """A new tenant, whose documents come through the API; its first key is printed once."""
    check_tenant(name)
    values = _settings_of(
        system_prompt=system_prompt,
        k=k,
        max_tokens=max_tokens,
        max_concurrency=max_concurrency,
        on_unsupported=on_unsupported,
        answer_mode=answer_mode,
    )
    settings = make_settings(data_dir, None)
    answer = _admin(settings, "POST", "/tenants", {"name": name, **values, "key": None if no_key else {}})
    if answer is None:
        directory = _directory(settings)
        answer = {"tenant": directory.create(name, TenantSettings.model_validate(values)).to_json()}
        if not no_key:
            issued = directory.issue_key(name, "", None)
            answer["key"] = issued.to_json()
    key = answer.get("key")
    shown = f"\nits key (shown once, keep it): {key['key']}" if key else ""
    _print(answer, json_out, f"created tenant {name}{shown}")


def set_(
    name: Annotated[str, typer.Argument(help="The tenant")],
    system_prompt: SystemPrompt = None,
    k: K = None,
    max_tokens: MaxTokens = None,
    max_concurrency: Concurrency = None,
    on_unsupported: Policy = None,
    answer_mode: Mode = None,
    data_dir: DataDirOption = None,
    json_out: JsonOption = False,
) -> None:
    """Changes the settings given, keeps the others; a running service applies them from the next request."""
    values = _settings_of(
        system_prompt=system_prompt,
        k=k,
        max_tokens=max_tokens,
        max_concurrency=max_concurrency,
        on_unsupported=on_unsupported,
        answer_mode=answer_mode,
    )
    if not values:
        raise InvalidRequestError("name at least one setting to change, e.g. --k 6")
    settings = make_settings(data_dir, None)
    answer = _admin(settings, "PATCH", f"/tenants/{name}", values)
    if answer is None:
        answer = _directory(settings).update(name, values).to_json()
    _print(answer, json_out, f"{name}: " + ", ".join(f"{k} = {v!r}" for k, v in values.items()))


def delete(
    name: Annotated[str, typer.Argument(help="The tenant to erase")],
    yes: Annotated[bool, typer.Option("--yes", help="Erase without asking")] = False,
    data_dir: DataDirOption = None,
    json_out: JsonOption = False,
) -> None:
    """Erases the tenant: its keys, chunks, documents, feedback and adapter assignment. Cannot be undone."""
    if not yes:
        typer.confirm(f"erase tenant {name} and everything it owns?", abort=True)
    settings = make_settings(data_dir, None)
    answer = _admin(settings, "DELETE", f"/tenants/{name}")
    if answer is None:
        database = Database.of(settings)
        with IngestRuntime.open(settings) as runtime:
            answer = erase_tenant(
                TenantDirectory(TenantStore(database)), runtime.index, database, settings, name
            )
    note = f"\n{answer['note']}" if answer.get("note") else ""
    _print(
        answer,
        json_out,
        f"erased tenant {name}: {len(answer['files'])} files, its chunks and its records{note}",
    )


def keys(
    name: Annotated[str, typer.Argument(help="The tenant")],
    data_dir: DataDirOption = None,
    json_out: JsonOption = False,
) -> None:
    """The tenant's keys by id and name; never a key itself."""
    settings = make_settings(data_dir, None)
    answer = _admin(settings, "GET", f"/tenants/{name}/keys")
    listed = answer["keys"] if answer else [k.to_json() for k in _directory(settings).keys(name)]
    if json_out:
        typer.echo(json.dumps({"keys": listed}))
        return
    table = Table("id", "name", "created", "expires", "revoked")
    for key in listed:
        table.add_row(
            key["id"], key["name"], *(_when(key[f]) for f in ("created_at", "expires_at", "revoked_at"))
        )
    out.print(table)


def issue_key(
    name: Annotated[str, typer.Argument(help="The tenant")],
    key_name: Annotated[str, typer.Option("--name", help="What the key is for")] = "",
    expires_in: Annotated[
        int | None, typer.Option("--expires-in", min=60, help="Seconds until refused")
    ] = None,
    data_dir: DataDirOption = None,
    json_out: JsonOption = False,
) -> None:
    """A new key for the tenant, printed once. To rotate: issue one, move the clients, revoke the old."""
    settings = make_settings(data_dir, None)
    answer = _admin(
        settings, "POST", f"/tenants/{name}/keys", _settings_of(name=key_name, expires_in_s=expires_in)
    )
    if answer is None:
        expires = datetime.now(UTC) + timedelta(seconds=expires_in) if expires_in else None
        issued = _directory(settings).issue_key(name, key_name, expires)
        answer = issued.to_json()
    _print(answer, json_out, f"{answer['id']} for {name} (shown once, keep it): {answer['key']}")


def revoke_key(
    name: Annotated[str, typer.Argument(help="The tenant")],
    key_id: Annotated[str, typer.Argument(help="The key's id, from `ragserve tenants keys`")],
    data_dir: DataDirOption = None,
    json_out: JsonOption = False,
) -> None:
    """Refuses the key from the next request on."""
    settings = make_settings(data_dir, None)
    answer = _admin(settings, "DELETE", f"/tenants/{name}/keys/{key_id}")
    if answer is None:
        answer = _directory(settings).revoke_key(name, key_id).to_json()
    _print(answer, json_out, f"revoked {key_id} of {name}")


def _when(stamp: int | None) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M") if stamp else "-"
