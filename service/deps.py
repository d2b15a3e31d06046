"""FastAPI dependencies: the service state, and the tenant that the bearer key selects.

They are coroutines on purpose: FastAPI runs a plain `def` dependency in its thread pool, and on a busy
event loop each such hop costs milliseconds before the request even starts.
"""

from typing import Annotated

from fastapi import Depends, Header, Request

from ragserve.service.state import ServiceState

__all__ = ["StateDep", "TenantDep", "admit"]


async def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.ragserve
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]


async def get_tenant(
    request: Request, state: StateDep, authorization: Annotated[str | None, Header()] = None
) -> str:
    tenant = await admit(state, authorization)
    request.state.tenant = tenant  # for the request metrics
    return tenant


async def admit(state: ServiceState, authorization: str | None) -> str:
    """The tenant of a bearer key (AuthError if none), its adapter as the database says now: an assignment
    made in another process is followed before its request goes on."""
    tenant = await state.tenants.authenticate(authorization)
    await state.adapters.follow(tenant.name, tenant.assigned)
    return tenant.name


TenantDep = Annotated[str, Depends(get_tenant)]
