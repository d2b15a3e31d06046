"""The `ragserve` entry point: it only registers the command groups."""

import typer

from ragserve.cli import ingest_commands

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

if __name__ == "__main__":
    app()
