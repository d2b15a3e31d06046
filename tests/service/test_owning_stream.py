"""A streamed answer gives back its concurrency slot however it ends, also when it never starts."""

import asyncio
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack

import pytest
from starlette.requests import ClientDisconnect
from starlette.types import Message, Scope, Send

from ragserve.errors import TooManyRequestsError
from ragserve.service.limits import ConcurrencyLimiter
from ragserve.service.owning_stream import OwningStream

SCOPE: Scope = {"type": "http", "asgi": {"spec_version": "2.4"}}


async def _receive() -> Message:
    await asyncio.sleep(3600)
    return {"type": "http.disconnect"}


def _client_gone_after(messages: int) -> Send:
    """A send that takes `messages` ASGI messages, then fails as a vanished client's does."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        if len(sent) >= messages:
            raise OSError("connection reset by peer")
        sent.append(message)

    return send


@pytest.mark.parametrize("messages", [0, 2])  # gone before the first event; gone mid-stream
def test_the_slot_is_free_again_and_the_events_are_closed(messages: int) -> None:
    limiter = ConcurrencyLimiter(1)
    trace: list[str] = []

    async def events() -> AsyncGenerator[str, None]:
        trace.append("started")
        try:
            for i in range(10):
                yield f"data: {i}\n\n"
        finally:
            trace.append("closed")

    async def scenario() -> None:
        held = AsyncExitStack()
        await held.enter_async_context(limiter.slot())
        with pytest.raises(TooManyRequestsError):  # the one slot is taken
            await held.enter_async_context(limiter.slot())
        with pytest.raises(ClientDisconnect):
            await OwningStream(events(), held)(SCOPE, _receive, _client_gone_after(messages))
        async with limiter.slot():  # free again
            pass

    asyncio.run(scenario())
    assert trace == ([] if messages == 0 else ["started", "closed"])
