"""A streamed response that owns what its request holds."""

from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

__all__ = ["OwningStream"]


class OwningStream(StreamingResponse):
    """Server-sent events that release what the request holds (its concurrency slot, its adapter lease) when
    the response is done, however it ends: also when the client is gone before the first event, and the
    events' generator never starts, so its own clean-up never runs."""

    def __init__(self, events: AsyncGenerator[str, None], held: AsyncExitStack) -> None:
        super().__init__(events, media_type="text/event-stream")
        self._events = events
        self._held = held

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.release()

    async def release(self) -> None:
        """Ends the events (mid-stream, that aborts the vLLM request, not leaving it to the GC), then lets go
        of what the request held. For a caller that reads `body_iterator` itself; idempotent."""
        await self._events.aclose()
        await self._held.aclose()
