"""A whole (non-streamed) answer from vLLM, given up as soon as its client hangs up."""

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import Request

from ragserve.errors import UpstreamError
from ragserve.service.dispatch import complete_on_replica
from ragserve.service.state import ServiceState

__all__ = ["complete"]

_T = TypeVar("_T")


async def complete(state: ServiceState, payload: dict[str, Any], request: Request | None) -> dict[str, Any]:
    """A client that hangs up cancels its vLLM request instead of leaving it to run. `request`: the HTTP
    request whose hang-up is watched; None where the caller watches its connection itself."""
    work = complete_on_replica(state, payload)
    return await (work if request is None else _unless_disconnected(work, request))


async def _unless_disconnected(work: Awaitable[_T], request: Request) -> _T:
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=0.25)
        if done:
            return task.result()
        if await request.is_disconnected():
            task.cancel()
            raise UpstreamError("the client disconnected")
