"""POST /v1/feedback: a user's thumbs up or down on one answer, stored for its tenant (service/feedback/)."""

import asyncio
from typing import Any

from fastapi import APIRouter

from ragserve.service.deps import StateDep, TenantDep
from ragserve.service.feedback.record import FeedbackRequest

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["feedback"])


@router.post("/feedback", status_code=201)
async def post_feedback(body: FeedbackRequest, state: StateDep, tenant: TenantDep) -> dict[str, Any]:
    """Stores the feedback as the key's tenant's, never another's; 429 once the tenant's store is full."""
    record = await asyncio.to_thread(state.feedback.append, tenant, body)
    return {"id": record.id, "tenant": record.tenant, "rating": record.rating}
