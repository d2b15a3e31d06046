"""`ragserve reindex`, `ragserve search` and `ragserve stats`."""

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
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
    print_error,
)
from ragserve.cli.query_file import QueryLine, read_queries
from ragserve.cli.via_service import reindex_via_service
from ragserve.errors import StoreLockedError
from ragserve.ingest.blue_green import Collections
from ragserve.ingest.index import SearchMode
from ragserve.ingest.reindex import ReindexReport
from ragserve.ingest.runtime import IngestRuntime
from ragserve.ingest.search import Hit
from ragserve.ingest.tenancy import check_tenant
from ragserve.ingest.watch import watch_folder
from ragserve.launch import registration
from ragserve.settings import Settings

__all__ = ["reindex", "search", "stats"]

out = Console()


@cli_errors
def reindex(
    docs_dir: Annotated[Path, typer.Argument(help="The tenant's docs folder (Markdown, text, HTML, PDF)")],
    tenant: TenantOption,
    json_out: JsonOption = False,
    watch: Annotated[bool, typer.Option("--watch", help="Keep running; re-index when files change")] = False,
    data_dir: DataDirOption = None,
    qdrant_url: QdrantUrlOption = None,
) -> None:
    """Index new and changed documents, drop deleted ones; unchanged ones cost a hash check."""
    check_tenant(tenant)
    settings = make_settings(data_dir, qdrant_url)
    try:
        runtime = IngestRuntime.open(settings)
    except StoreLockedError:
        if watch or registration.read(settings.data_dir) is None:
            raise
        _print_report(reindex_via_service(settings, docs_dir, tenant), json_out)
        return
    with runtime:
        reindexer = runtime.reindexer()
        with counted_progress(not err.is_terminal, "files", transient=True) as bar:
            task = bar.add_task(f"indexing {tenant}", total=None)
            report = reindexer.run(
                docs_dir, tenant, lambda done, total: bar.update(task, completed=done, total=total)
            )
        _print_report(report, json_out)
        if watch:
            err.print(f"watching {docs_dir} for changes (Ctrl-C to stop)")
            watch_folder(reindexer, docs_dir, tenant, lambda r: _print_report(r, json_out), print_error)


@cli_errors
def search(
    query: Annotated[str | None, typer.Argument(help="What to look for")] = None,
    tenant: TenantOption = ...,  # type: ignore[assignment]
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="How many hits")] = 5,
    queries: Annotated[
        Path | None, typer.Option("--queries", help='A JSONL file of {"id", "query"} lines; prints JSONL')
    ] = None,
    mode: Annotated[str, typer.Option("--mode", help="hybrid, dense or bm25")] = "hybrid",
    json_out: JsonOption = False,
    data_dir: DataDirOption = None,
    qdrant_url: QdrantUrlOption = None,
) -> None:
    """Hybrid search (dense + BM25, fused with RRF) over one tenant's documents."""
    check_tenant(tenant)
    if mode not in ("hybrid", "dense", "bm25"):
        raise typer.BadParameter(f"--mode must be hybrid, dense or bm25, not {mode!r}")
    search_mode: SearchMode = mode  # type: ignore[assignment]
    settings = make_settings(data_dir, qdrant_url)
    if queries is not None:
        if query is not None:
            raise typer.BadParameter("give either a QUERY or --queries FILE, not both")
        _search_file(settings, tenant, read_queries(queries), k, search_mode)
    elif query is not None:
        with IngestRuntime.open(settings) as runtime:
            hits = runtime.retriever().search(tenant, query, k, search_mode)
        if json_out:
            print(
                json.dumps(
                    {"query": query, "hits": [h.to_json() for h in hits]}, ensure_ascii=False, indent=2
                )
            )
        else:
            _print_hits(query, hits)
    else:
        raise typer.BadParameter("give a QUERY or --queries FILE")


def _search_file(settings: Settings, tenant: str, batch: list[QueryLine], k: int, mode: SearchMode) -> None:
    """One JSON line per query, printed as soon as it is answered."""
    with IngestRuntime.open(settings) as runtime:
        retriever = runtime.retriever()
        for item in batch:
            hits = retriever.search(tenant, item.query, k, mode)
            line = {"id": item.id, "query": item.query, "hits": [h.to_json() for h in hits]}
            print(json.dumps(line, ensure_ascii=False), flush=True)


@cli_errors
def stats(
    tenant: TenantOption,
    json_out: JsonOption = False,
    data_dir: DataDirOption = None,
    qdrant_url: QdrantUrlOption = None,
) -> None:
    """How many documents and chunks a tenant has indexed."""
    check_tenant(tenant)
    with IngestRuntime.open(make_settings(data_dir, qdrant_url)) as runtime:
        index = runtime.index
        exists = Collections(index).live_name() is not None
        counts = {
            "documents": index.count_documents(tenant) if exists else 0,
            "chunks": index.count_chunks(tenant) if exists else 0,
        }
    if json_out:
        print(json.dumps(counts))
    else:
        out.print(f"tenant {tenant}: {counts['documents']} documents, {counts['chunks']} chunks")


def _print_report(report: ReindexReport, json_out: bool) -> None:
    if json_out:
        print(json.dumps(report.to_json()), flush=True)
        return
    out.print(
        f"added {report.added}, updated {report.updated}, deleted {report.deleted}, "
        f"unchanged {report.unchanged}; embedded {report.chunks_embedded} chunks in {report.seconds:.1f}s"
    )
    if report.index == "building":
        out.print(
            "the model or chunking changed: this tenant went into a new index beside the live one, which "
            f"keeps serving until these tenants are re-indexed too: {', '.join(report.waiting_for)}"
        )
    elif report.index == "switched":
        out.print("the rebuilt index is complete and live now; the old one is deleted")
    for skipped in report.skipped:
        out.print(escape(f"  skipped {skipped.path}: {skipped.reason}"), highlight=False, soft_wrap=True)


def _print_hits(query: str, hits: list[Hit]) -> None:
    if not hits:
        out.print(f"no hits for {query!r}")
        return
    table = Table(title=f"hits for {query!r}", show_lines=True)
    for column in ("#", "score", "source", "heading", "text"):
        table.add_column(column, overflow="fold")
    for rank, hit in enumerate(hits, start=1):
        snippet = hit.text if len(hit.text) <= 240 else hit.text[:237] + "..."
        table.add_row(str(rank), f"{hit.score:.3f}", escape(hit.source), escape(hit.heading), escape(snippet))
    out.print(table)
