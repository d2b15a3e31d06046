"""Back-pressure and bounds on what one client may hold: requests in flight (429 past the cap), a request
body's size (413) and the wait for it (408), and uvicorn's limits on connections and headers."""

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TypedDict

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragserve.errors import TooManyRequestsError
from ragserve.settings import Settings

__all__ = ["ConcurrencyLimiter", "RequestBodyLimits", "ServerLimits", "server_limits"]


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
        self.default_share = default_share
        self._caps: dict[str, int | None] = dict(tenant_limits or {})
        self._in_flight = 0
        self._by_tenant: Counter[str] = Counter()

    def set_tenant(self, tenant: str, cap: int | None, *, deleted: bool = False) -> None:
        """A tenant created or changed (its `max_concurrency`), or deleted, while the service runs."""
        if deleted:
            self._caps.pop(tenant, None)
        else:
            self._caps[tenant] = cap

    def tenant_limit(self, tenant: str) -> int:
        shared = max(1, int(self.limit * self.default_share)) if len(self._caps) > 1 else self.limit
        return min(self._caps.get(tenant) or shared, self.limit)

    def in_flight(self, tenant: str | None = None) -> int:
        """Requests holding a slot now: the service's, or one tenant's."""
        return self._in_flight if tenant is None else self._by_tenant[tenant]

    def acquire(self, tenant: str = "") -> None:
        """Takes a slot, or raises TooManyRequestsError. The event loop is single-threaded: the checks and
        the increments cannot interleave with another request's."""
        if self._by_tenant[tenant] >= self.tenant_limit(tenant):
            raise TooManyRequestsError(self.retry_after_s, "this key's")
        if self._in_flight >= self.limit:
            raise TooManyRequestsError(self.retry_after_s)
        self._in_flight += 1
        self._by_tenant[tenant] += 1

    def release(self, tenant: str = "") -> None:
        self._in_flight -= 1
        self._by_tenant[tenant] -= 1

    @asynccontextmanager
    async def slot(self, tenant: str = "") -> AsyncIterator[None]:
        self.acquire(tenant)
        try:
            yield
        finally:
            self.release(tenant)


class ServerLimits(TypedDict):
    limit_concurrency: int
    timeout_keep_alive: int
    h11_max_incomplete_event_size: int
    ws_max_size: int


def server_limits(settings: Settings) -> ServerLimits:
    """uvicorn's arguments bounding connections: past `limit_concurrency` open connections a request gets 503,
    an idle keep-alive connection closes, headers over the cap are refused (h11; httptools has no cap), and a
    WebSocket message over the body cap closes its connection (1009) before it is held whole."""
    return ServerLimits(
        limit_concurrency=settings.max_connections,
        timeout_keep_alive=settings.keep_alive_s,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        ws_max_size=settings.max_body_bytes,
    )


class RequestBodyLimits:
    """ASGI middleware: a body over max_bytes is refused with 413, and a body whose next chunk does not arrive
    within timeout_s with 408, so a stalled upload cannot hold its connection open.

    The refusal is sent from inside `receive` the moment a limit is passed, the app is told the client left,
    and whatever the app answers after that is dropped: FastAPI turns any error raised while it reads a body
    into its own 400, so an exception through the app would lose the status.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, timeout_s: float, larger: Mapping[str, int] | None = None
    ) -> None:
        """`larger`: paths whose bodies may be bigger (an upload's), with their own limits."""
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope.get("path", ""), self.max_bytes)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, 413, "request_too_large", _too_large(limit))
            return
        guard = _GuardedBody(receive, send, limit, self.timeout_s)
        await self.app(scope, guard.receive, guard.send)


class _GuardedBody:
    """One request's body as the app reads it, with the two limits, and the app's answer unless refused."""

    def __init__(self, receive: Receive, send: Send, max_bytes: int, timeout_s: float) -> None:
        self._receive = receive
        self._send = send
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.received = 0
        self.complete = False
        self.started = False  # the app has begun its answer: too late to send a status
        self.refused = False

    async def receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        if self.complete:  # after the body, receive only waits for the client to leave: no deadline
            return await self._receive()
        try:
            message = await asyncio.wait_for(self._receive(), self.timeout_s)
        except TimeoutError:
            detail = f"the request body stalled: no data for {self.timeout_s:g} s"
            return await self._refuse(408, "request_timeout", detail)
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.max_bytes:
                return await self._refuse(413, "request_too_large", _too_large(self.max_bytes))
            self.complete = not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if self.refused:
            return  # the refusal was the answer
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)

    async def _refuse(self, status: int, code: str, detail: str) -> Message:
        self.refused = True
        if not self.started:
            await _refuse(self._send, status, code, detail)
        return {"type": "http.disconnect"}


def _too_large(max_bytes: int) -> str:
    return f"request body over {max_bytes} bytes"


async def _refuse(send: Send, status: int, code: str, detail: str) -> None:
    """An OpenAI-shaped error, and the connection closed: what is left of the body is never read."""
    error = {"message": detail, "type": "invalid_request_error", "param": None, "code": code}
    body = json.dumps({"error": error}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
