"""The service's call into ingest's hybrid search: off the event loop, with a time limit."""

import asyncio
from collections.abc import Sequence

from ragserve.errors import RagserveError, UpstreamError
from ragserve.ingest.search import Hit
from ragserve.service.state import ServiceState

__all__ = ["retrieve_hits"]


async def retrieve_hits(
    state: ServiceState, tenant: str, query: str, k: int, sources: Sequence[str] | None = None
) -> list[Hit]:
    """The tenant's best `k` chunks; of those documents only when `sources` is given."""
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(state.retriever.search, tenant, query, k, "hybrid", sources),
            state.settings.retrieval_timeout_s,
        )
    except RagserveError:
        raise
    except Exception as exc:  # the Qdrant client raises many kinds; to the caller they all mean "unavailable"
        raise UpstreamError(f"retrieval failed: {type(exc).__name__}: {exc}") from exc
