"""`ragserve feedback export`: users' votes on answers, as drafts for `eval answers` and adapter data."""

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ragserve.cli.common import DataDirOption, JsonOption, cli_errors, err, make_settings
from ragserve.evaluation.feedback_export import export_feedback
from ragserve.service.feedback.store import FeedbackStore

__all__ = ["feedback_app"]

feedback_app = typer.Typer(
    help="Feedback on answers (POST /v1/feedback), back into the loop.", no_args_is_help=True
)


@feedback_app.command("export")
@cli_errors
def export(
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="The tenant whose feedback to export")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Where to write the files (default: ./feedback-TENANT)")
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Then delete the exported records, making room for new ones")
    ] = False,
    data_dir: DataDirOption = None,
    json_out: JsonOption = False,
) -> None:
    """Up-votes to OUT/qa.jsonl (draft labelled questions for `ragserve eval answers`), down-votes to
    OUT/adapter-candidates.jsonl (conversations that await the right reply, for the adapter's dataset)."""
    settings = make_settings(data_dir, None)
    store = FeedbackStore.of(settings)
    report = export_feedback(store, tenant, out or Path(f"feedback-{tenant}"))
    if clear:
        report.cleared = store.clear(tenant, report.exported_ids)
    for skipped in report.skipped:
        _warn(f"skipped {skipped}")
    for left_out in report.qa_left_out:
        _warn(f"no QA row for {left_out}")
    if json_out:
        typer.echo(json.dumps(report.to_json()))
        return
    follow_ups = len(report.follow_ups)
    asked_after = (
        f"; {follow_ups} asked after earlier turns: check that each stands alone" if follow_ups else ""
    )
    typer.echo(
        f"{report.tenant}: feedback records: {report.records}, in {report.source}\n"
        f"{report.qa_path}: up-votes as draft questions: {report.qa_rows} ({report.unanswerable} "
        f"unanswerable{asked_after}); review each, and shorten its accepted answer to the fact\n"
        f"{report.candidates_path}: down-votes as adapter candidates: {report.candidates}; write the right "
        "reply to each as its last assistant turn, then add it to the adapter's dataset"
        + (f"\ncleared {report.cleared} exported records from the store" if clear else "")
    )


def _warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)
