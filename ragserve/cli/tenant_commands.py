"""`ragserve tenants promote`: a big tenant leaves the shared shard for its own (ingest/promotion.py); the
verbs that manage tenants and keys are in tenant_admin_commands.py."""

import json
from typing import Annotated

import typer
from rich.console import Console

from ragserve.cli.common import DataDirOption, JsonOption, QdrantUrlOption, cli_errors, err, make_settings
from ragserve.cli.tenant_admin_commands import register
from ragserve.ingest.promotion import promote_tenant
from ragserve.ingest.runtime import IngestRuntime
from ragserve.ingest.tenancy import check_tenant

__all__ = ["tenants_app"]

tenants_app = typer.Typer(
    help="Tenants and their keys, live through the running service; their shards on a cluster.",
    no_args_is_help=True,
)
out = Console()


@tenants_app.command("promote")
@cli_errors
def promote(
    tenant: Annotated[str, typer.Argument(help="The tenant to give a shard of its own")],
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds to wait for Qdrant to copy its points")
    ] = 600.0,
    json_out: JsonOption = False,
    data_dir: DataDirOption = None,
    qdrant_url: QdrantUrlOption = None,
) -> None:
    """Copy a tenant's points from the shared shard into a shard key of its own, switch its reads and writes
    there when the copy is complete, then remove them from the shared shard. Running it again finishes an
    interrupted promotion."""
    check_tenant(tenant)
    with IngestRuntime.open(make_settings(data_dir, qdrant_url)) as runtime:
        promotion = promote_tenant(
            runtime.index,
            tenant,
            timeout_s=timeout,
            waiting=lambda: err.print(f"waiting for Qdrant to copy {tenant}'s points", style="dim"),
        )
    if json_out:
        print(json.dumps(promotion.to_json()))
        return
    how = "promoted" if promotion.started else "finished promoting"
    out.print(
        f"{how} {tenant}: its {promotion.points} points are in its own shard of {promotion.collection}, "
        "and gone from the shared shard",
        highlight=False,
        soft_wrap=True,
    )


register(tenants_app)
