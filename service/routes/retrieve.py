"""POST /v1/retrieve: the tenant's hits for a query, for debugging and evaluation."""

from typing import Any

from fastapi import APIRouter

from ragserve.service.deps import StateDep, TenantDep
from ragserve.service.retrieval import retrieve_hits
from ragserve.service.schemas import RetrieveRequest

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["retrieval"])


@router.post("/retrieve")
async def retrieve(body: RetrieveRequest, state: StateDep, tenant: TenantDep) -> dict[str, Any]:
    """The caller's tenant's hits for `query` (hybrid: dense + BM25), for debugging and evaluation."""
    async with state.limiter.slot(tenant):
        hits = await retrieve_hits(state, tenant, body.query, body.k)
    return {"query": body.query, "hits": [h.to_json() for h in hits]}
