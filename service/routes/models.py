"""GET /v1/models: what the caller's tenant may use."""

import time
from typing import Any

from fastapi import APIRouter

from ragserve.service.deps import StateDep, TenantDep

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["models"])
_CREATED = int(time.time())


@router.get("/models")
async def list_models(state: StateDep, tenant: TenantDep) -> dict[str, Any]:
    """What the caller's tenant may use: `default`, the base model, and its own adapter if it has one."""
    data = [
        {"id": name, "object": "model", "created": _CREATED, "owned_by": "ragserve", "root": served}
        for name, served in sorted(state.models_for(tenant).items())
    ]
    return {"object": "list", "data": data}
