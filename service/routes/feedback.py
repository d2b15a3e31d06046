"""POST /v1/feedback: a user's thumbs up or down on one answer, stored for its tenant (service/feedback/)."""

import asyncio
from typing import Any

from fastapi import APIRouter

from ragserve.service.deps import StateDep, TenantDep
from ragserve.service.feedback.record import FeedbackRequest
from ragserve.service.feedback.store import FeedbackStore

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["feedback"])


@router.post("/feedback", status_code=201)
async def post_feedback(body: FeedbackRequest, state: StateDep, tenant: TenantDep) -> dict[str, Any]:
    """Appends the feedback to the key's tenant's file, never another's; 429 once that file is full."""
    record = await asyncio.to_thread(FeedbackStore.of(state.settings).append, tenant, body)
    return {"id": record.id, "tenant": record.tenant, "rating": record.rating}
