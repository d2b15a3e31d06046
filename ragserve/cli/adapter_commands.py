"""`ragserve adapters list | train | eval | assign`: the per-tenant LoRA adapters' life cycle."""

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ragserve.adapters.assignments import AssignmentStore
from ragserve.adapters.evaluation import SETUPS
from ragserve.adapters.lifecycle import train_adapter
from ragserve.adapters.listing import list_adapters
from ragserve.adapters.registry import AdapterRegistry, check_safe_name
from ragserve.adapters.training import TrainConfig
from ragserve.adapters.validation import AdapterLimits, validate_on_base
from ragserve.cli.common import (
    DataDirOption,
    JsonOption,
    cli_errors,
    counted_progress,
    err,
    make_settings,
)
from ragserve.cli.via_service import admin_request, running_service
from ragserve.engine.base_model import ensure_base_model, served_base_name
from ragserve.errors import InvalidTenantError
from ragserve.launch.adapter_eval import evaluate_version
from ragserve.service.config import BUNDLED_BASE, load_config
from ragserve.service.tenants import TenantDirectory
from ragserve.state.database import Database
from ragserve.state.tenants import TenantStore

__all__ = ["adapters_app"]

adapters_app = typer.Typer(
    help="Per-tenant LoRA adapters: train, evaluate, list and assign.", no_args_is_help=True
)

BaseOption = Annotated[
    str, typer.Option("--base", help="Base model: the bundled smollm2-135m, or a local HF model folder")
]
ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The service's ragserve.toml")]


@adapters_app.command("train")
@cli_errors
def train(
    dataset: Annotated[Path, typer.Argument(help="Chat-format JSONL: one {'messages': [...]} per line")],
    name: Annotated[str, typer.Option("--name", help="The adapter's name; each run makes a new version")],
    eval_fraction: Annotated[float, typer.Option("--eval-fraction", help="Share held out for eval")] = 0.2,
    epochs: Annotated[int, typer.Option("--epochs", min=1, max=100)] = 3,
    rank: Annotated[int, typer.Option("--rank", min=1, max=256)] = 16,
    learning_rate: Annotated[float, typer.Option("--learning-rate")] = 1e-3,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=512)] = 8,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="Longer examples are dropped")] = 512,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    base: BaseOption = BUNDLED_BASE,
    data_dir: DataDirOption = None,
    json_out: JsonOption = False,
) -> None:
    """Validate the dataset, hold out a seeded eval split, train a LoRA with PEFT, write a new version."""
    settings = make_settings(data_dir, None)
    config = TrainConfig(
        rank=rank, alpha=2 * rank, epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
        max_tokens=max_tokens, seed=seed,
    )  # fmt: skip
    check_safe_name(name, "name")  # before the base model is converted
    base_dir = ensure_base_model(base, settings.models_dir)
    with counted_progress(json_out, "steps") as progress:
        task = progress.add_task(f"training {name}", total=None)

        def on_step(step: int, total: int, loss: float) -> None:
            progress.update(
                task, completed=step, total=total, description=f"training {name}, loss {loss:.3f}"
            )

        trained = train_adapter(
            dataset, name, AdapterRegistry(settings.adapters_root), served_base_name(base), base_dir, config,
            AdapterLimits.of(settings), eval_fraction, on_step,
            lambda line: err.print(line, highlight=False),
        )  # fmt: skip
    version, result = trained.version, trained.result
    out = {"adapter": version.ref, "path": str(version.path), "dataset": trained.report.to_json(),
           "train": trained.train_rows, "eval": trained.held_out, "training": asdict(result)}  # fmt: skip
    if json_out:
        typer.echo(json.dumps(out))
    else:
        typer.echo(
            f"{version.ref}: {result.steps} steps in {result.seconds:.0f}s on {result.device} "
            f"({result.precision}), final loss {result.final_loss:.3f}; {trained.train_rows} train, "
            f"{trained.held_out} held out -> {version.path}"
        )


@adapters_app.command("eval")
@cli_errors
def eval_(
    ref: Annotated[
        str, typer.Argument(metavar="NAME[@VERSION]", help="The adapter; its newest version by default")
    ],
    vllm_url: Annotated[
        str | None, typer.Option("--vllm-url", help="A running vLLM server with the same base model")
    ] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, max=4096)] = 128,
    base: Annotated[
        str | None, typer.Option("--base", help="The base model folder, if not the bundled model")
    ] = None,
    data_dir: DataDirOption = None,
    json_out: JsonOption = False,
) -> None:
    """Held-out split through base, prompted, few-shot and the adapter: a report, and scores in the card."""
    settings = make_settings(data_dir, None)
    version = AdapterRegistry(settings.adapters_root).resolve(ref)
    evaluated = evaluate_version(settings, version, vllm_url, max_tokens, base, err.print)
    result, paths = evaluated.result, evaluated.paths
    if json_out:
        typer.echo(json.dumps({**result, "report": {k: str(v) for k, v in paths.items()}}))
        return
    table = Table("set-up", "format adherence", "similarity", "prompt tokens", "latency p50 ms")
    for setup in SETUPS:
        row = result[setup]
        adherence = "n/a" if row["format_adherence"] is None else f"{row['format_adherence']:.0%}"
        table.add_row(setup, adherence, f"{row['similarity']:.3f}", f"{row['prompt_tokens']:.0f}",
                      f"{row['latency_p50_ms']:.0f}")  # fmt: skip
    err.print(table)
    typer.echo(f"report: {paths['markdown']}")


@adapters_app.command("assign")
@cli_errors
def assign(
    tenant: Annotated[str, typer.Argument(help="The tenant")],
    ref: Annotated[
        str, typer.Argument(metavar="NAME[@VERSION]", help='The adapter, or "" for the base model')
    ],
    config: ConfigOption = Path("ragserve.toml"),
    data_dir: DataDirOption = None,
) -> None:
    """Persist the tenant's adapter; a running service validates, loads and switches to it at once."""
    settings = make_settings(data_dir, None)
    url = running_service(settings)
    if url is not None:
        path = f"/admin/tenants/{tenant}/adapter"
        result = admin_request(settings, url, "PUT", path, {"adapter": ref}, 300)
        typer.echo(
            f"{tenant} now uses {result['adapter'] or 'the base model'} (served as {result['served_name']})"
        )
        return
    cfg = load_config(config)
    if tenant not in cfg.tenants:
        raise InvalidTenantError(f"{config} has no tenant {tenant!r}")
    version = None
    if ref.strip():
        version = AdapterRegistry(settings.adapters_root).resolve(ref.strip())
        base_dir = ensure_base_model(cfg.model.base, settings.models_dir)
        validate_on_base(version, served_base_name(cfg.model.base), base_dir, settings)
    database = Database.of(settings)
    TenantDirectory(TenantStore(database)).sync_config(cfg)
    AssignmentStore(database).set(tenant, version.ref if version else "")
    typer.echo(
        f"{tenant} now uses {version.ref if version else 'the base model'} (from the service's next start)"
    )


@adapters_app.command("list")
@cli_errors
def list_(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Also count the tenants' configured adapters")
    ] = None,
    data_dir: DataDirOption = None,
    json_out: JsonOption = False,
) -> None:
    """Every adapter, its versions, their eval scores, and which tenants use which version."""
    settings = make_settings(data_dir, None)
    registry = AdapterRegistry(settings.adapters_root)
    configured = load_config(config).adapters() if config else {}
    assigned = {**configured, **AssignmentStore(Database.of(settings)).read()}
    listing = list_adapters(registry, assigned)
    if json_out:
        typer.echo(json.dumps({"adapters": [entry.to_json() for entry in listing]}))
        return
    table = Table("adapter", "created", "base", "format adherence", "tenants")
    for entry in listing:
        for v in entry.versions:
            adherence = (v.eval or {}).get("adapter", {}).get("format_adherence")
            shown = "-" if adherence is None else f"{adherence:.0%}"
            table.add_row(f"{entry.name}@{v.version}", v.created_at or "-", v.base_model or "-",
                          shown, ", ".join(v.tenants) or "-")  # fmt: skip
    err.print(table if listing else f"no adapters in {registry.root}")
