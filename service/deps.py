"""FastAPI dependencies: the service state, and the tenant that the bearer key selects."""

from typing import Annotated

from fastapi import Depends, Header, Request

from service.state import ServiceState

__all__ = ["StateDep", "TenantDep"]


def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.ragserve
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]


def get_tenant(
    request: Request, state: StateDep, authorization: Annotated[str | None, Header()] = None
) -> str:
    tenant = state.keys.tenant_for(authorization)
    request.state.tenant = tenant  # for the request metrics
    return tenant


TenantDep = Annotated[str, Depends(get_tenant)]
