"""The `ragserve` entry point: it only registers the command groups."""

import typer

from ragserve.cli import ingest_commands, serve_commands
from ragserve.cli.adapter_commands import adapters_app
from ragserve.cli.eval_commands import eval_app
from ragserve.cli.feedback_commands import feedback_app
from ragserve.cli.model_commands import model_app
from ragserve.cli.tenant_commands import tenants_app

__all__ = ["app"]

app = typer.Typer(
    name="ragserve",
    help="A company chatbot that knows your documents: index, search and serve them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("reindex")(ingest_commands.reindex)
app.command("search")(ingest_commands.search)
app.command("stats")(ingest_commands.stats)
app.command("up")(serve_commands.up)
app.add_typer(model_app, name="model")
app.add_typer(adapters_app, name="adapters")
app.add_typer(eval_app, name="eval")
app.add_typer(tenants_app, name="tenants")
app.add_typer(feedback_app, name="feedback")

if __name__ == "__main__":
    app()
