"""`ragserve eval answers`: labelled questions through the real chat path, the answers scored."""

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ragserve.cli.common import (
    DataDirOption,
    JsonOption,
    QdrantUrlOption,
    TenantOption,
    cli_errors,
    counted_progress,
    err,
    make_settings,
)
from ragserve.errors import ConfigError
from ragserve.evaluation.qa import load_qa
from ragserve.evaluation.report import format_metric, write_report
from ragserve.evaluation.session import EvalRun, evaluate_service
from ragserve.evaluation.setups import load_setups
from ragserve.launch.answer_eval import evaluate_config
from ragserve.service.config import load_config

__all__ = ["eval_app"]

eval_app = typer.Typer(help="Measure the chatbot end to end on labelled questions.", no_args_is_help=True)

_SHOWN = (("answer_accuracy", "answer acc."), ("refusal_accuracy", "refusal acc."),
          ("source_retrieved", "source retrieved"), ("source_cited", "source cited"),
          ("supported", "supported"), ("latency_p50_ms", "p50 ms"),
          ("prompt_tokens_mean", "prompt tokens"))  # fmt: skip
_SHOWN_RETRIEVAL = (("hit_at_1", "hit@1"), ("hit_at_5", "hit@5"), ("mrr_at_5", "MRR@5"))


@eval_app.command("answers")
@cli_errors
def answers(
    qa_file: Annotated[Path, typer.Argument(help="Labelled questions, JSONL (see docs/answer-quality.md)")],
    tenant: TenantOption,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Start vLLM, the index and the API from this config")
    ] = None,
    url: Annotated[str | None, typer.Option("--url", help="A running ragserve service instead")] = None,
    key: Annotated[
        str | None, typer.Option("--key", envvar="RAGSERVE_EVAL_KEY", help="The tenant's API key, with --url")
    ] = None,
    setups_file: Annotated[
        Path | None, typer.Option("--setups", help="A TOML file of \\[setups.NAME] to compare")
    ] = None,
    setup: Annotated[
        list[str] | None, typer.Option("--setup", help="Only this set-up of the file (repeatable)")
    ] = None,
    retrieval_only: Annotated[
        bool, typer.Option("--retrieval-only", help="Rank sources only (hit@1, hit@5, MRR@5); no answers")
    ] = False,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=64)] = 4,
    out: Annotated[Path | None, typer.Option("--out", help="Write answers.json, .md and .png here")] = None,
    data_dir: DataDirOption = None,
    qdrant_url: QdrantUrlOption = None,
    json_out: JsonOption = False,
) -> None:
    """Ask every question of QA_FILE as TENANT, under each set-up, and score the answers."""
    if (config is None) == (url is None):
        raise ConfigError("give either --config (start what it needs) or --url (a running service)")
    if url is not None and not key:
        raise ConfigError("--url needs the tenant's --key (or RAGSERVE_EVAL_KEY)")
    items = load_qa(qa_file)
    setups = load_setups(setups_file, setup or [])
    run = EvalRun(tenant, qa_file, items, setups, retrieval_only, concurrency)
    cfg = load_config(config) if config is not None else None
    total = len(items) * (1 if retrieval_only else len(setups))
    with counted_progress(json_out, "questions") as progress:
        task = progress.add_task("retrieving" if retrieval_only else "asking", total=total)

        def on_done() -> None:
            progress.advance(task)

        if cfg is not None:
            settings = make_settings(data_dir, qdrant_url)
            report = evaluate_config(cfg, settings, run, on_done, progress.console.print)
        else:
            report = evaluate_service(str(url), str(key), run, on_done)
    paths = write_report(out, report) if out is not None else {}
    if json_out:
        summary: dict[str, Any] = {k: report[k] for k in ("tenant", "questions", "setups")}
        typer.echo(json.dumps({**summary, "report": {k: str(v) for k, v in paths.items()}}))
        return
    shown = _SHOWN_RETRIEVAL if retrieval_only else _SHOWN
    table = Table(*(label for _, label in shown))
    table.add_column("set-up", no_wrap=True)
    for name, metrics in report["setups"].items():
        table.add_row(*(format_metric(metrics.get(k)) for k, _ in shown), name)
    err.print(table)
    if paths:
        typer.echo(f"report: {paths['markdown']}")
