"""FastAPI dependencies: the service state, and the tenant that the bearer key selects.

They are coroutines on purpose: FastAPI runs a plain `def` dependency in its thread pool, and on a busy
event loop each such hop costs milliseconds before the request even starts.
"""

from typing import Annotated

from fastapi import Depends, Header, Request

from ragserve.service.state import ServiceState

__all__ = ["StateDep", "TenantDep"]


async def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.ragserve
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]


async def get_tenant(
    request: Request, state: StateDep, authorization: Annotated[str | None, Header()] = None
) -> str:
    tenant = await state.tenants.authenticate(authorization)
    request.state.tenant = tenant.name  # for the request metrics
    await state.adapters.follow(tenant.name, tenant.assigned)  # an assignment made in another process
    return tenant.name


TenantDep = Annotated[str, Depends(get_tenant)]
