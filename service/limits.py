"""Back-pressure: a cap on requests in flight, answered with 429 and Retry-After past it."""

import json
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragserve.errors import TooManyRequestsError

__all__ = ["BodySizeLimit", "ConcurrencyLimiter"]


class ConcurrencyLimiter:
    """A cap on requests in flight for the whole service, and a smaller one for each tenant, so one busy
    tenant's long streams cannot take every slot: past its share it gets 429 while a quiet tenant is still
    served. A tenant's share is its configured `max_concurrency`, else `default_share` of the service's."""

    def __init__(
        self,
        limit: int,
        tenant_limits: Mapping[str, int | None] | None = None,
        default_share: float = 0.5,
        retry_after_s: int = 1,
    ) -> None:
        self.limit = limit
        self.retry_after_s = retry_after_s
        tenants = tenant_limits or {}
        shared = max(1, int(limit * default_share)) if len(tenants) > 1 else limit
        self._tenant_limits = {name: min(cap or shared, limit) for name, cap in tenants.items()}
        self._in_flight = 0
        self._by_tenant: Counter[str] = Counter()

    def tenant_limit(self, tenant: str) -> int:
        return self._tenant_limits.get(tenant, self.limit)

    @asynccontextmanager
    async def slot(self, tenant: str = "") -> AsyncIterator[None]:
        # Single-threaded event loop: the checks and the increments cannot interleave.
        if self._by_tenant[tenant] >= self.tenant_limit(tenant):
            raise TooManyRequestsError(self.retry_after_s, "this key's")
        if self._in_flight >= self.limit:
            raise TooManyRequestsError(self.retry_after_s)
        self._in_flight += 1
        self._by_tenant[tenant] += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            self._by_tenant[tenant] -= 1


class BodySizeLimit:
    """ASGI middleware: a request body over max_bytes is refused with 413 before the app reads it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLargeError
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _BodyTooLargeError:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        message = f"request body over {self.max_bytes} bytes"
        error = {
            "message": message,
            "type": "invalid_request_error",
            "param": None,
            "code": "request_too_large",
        }
        body = json.dumps({"error": error}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _BodyTooLargeError(Exception):
    pass
