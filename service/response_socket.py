"""The Responses API's WebSocket mode (`ws://.../v1/responses`, the SDKs' `responses.connect()`).

The key is the handshake's `Authorization` header: without a valid one the handshake is refused with the
HTTP 401 a POST would get. On the connection the client sends `response.create` messages, each with the fields
of `POST /v1/responses` (`stream` is implied); each is answered down the same path as a streamed POST, its
events sent one JSON message each, in order, one response at a time. The key is checked again for each
response, so a revoked key stops at its next one. The connection remembers its latest response, so
`previous_response_id` continues it on this connection even with `store: false`.

A message that is not JSON, is not a `response.create`, or is refused (a bad field, an unknown id, the
tenant's concurrency share) is answered by an `error` event naming the problem, and the connection stays
open. A client that hangs up mid-answer cancels its vLLM request, as one that closes an HTTP stream does.
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError

from ragserve.errors import InvalidRequestError, PayloadTooLargeError, RagserveError
from ragserve.service.deps import admit
from ragserve.service.http_errors import domain_error_body, validation_error_body
from ragserve.service.owning_stream import OwningStream
from ragserve.service.response_schemas import ResponsesRequest
from ragserve.service.response_shape import error_event_fields
from ragserve.service.state import ServiceState

__all__ = ["ResponseSocket"]

Thread = list[dict[str, Any]]
Memory = dict[str, Thread]  # a connection's latest response's thread, by its id
Respond = Callable[[ResponsesRequest, Request | None, ServiceState, str, Memory], Awaitable[Response]]

_CREATE = "response.create"


class ResponseSocket:
    """One client's connection: its `response.create` messages answered in turn."""

    def __init__(self, websocket: WebSocket, state: ServiceState, respond: Respond) -> None:
        self._socket = websocket
        self._state = state
        self._respond = respond
        self._authorization = websocket.headers.get("authorization")
        self._remembered: Memory = {}

    async def serve(self) -> None:
        try:
            await admit(self._state, self._authorization)
        except RagserveError as exc:
            status, body = domain_error_body(exc)
            await self._socket.send_denial_response(JSONResponse(body, status_code=status))
            return
        await self._socket.accept()
        try:
            while True:
                await self._answer(await self._socket.receive_text())
        except WebSocketDisconnect:
            return

    async def _answer(self, message: str) -> None:
        try:
            body = self._request(message)
            tenant = await admit(self._state, self._authorization)
            response = await self._respond(body, None, self._state, tenant, self._remembered)
        except RagserveError as exc:
            await self._error(*domain_error_body(exc))
            return
        except ValidationError as exc:
            await self._error(400, validation_error_body(exc.errors()))
            return
        if not isinstance(response, StreamingResponse):  # an error the answer path returned whole
            await self._error(response.status_code, json.loads(bytes(response.body)))
            return
        try:
            async for event in response.body_iterator:
                text = event if isinstance(event, str) else bytes(event).decode()
                await self._socket.send_text(text.split("data: ", 1)[1].strip())  # the event's JSON
        finally:
            if isinstance(response, OwningStream):
                await response.release()

    def _request(self, message: str) -> ResponsesRequest:
        cap = self._state.settings.max_body_bytes  # (uvicorn closes the connection on a larger one first)
        if len(message.encode()) > cap:
            raise PayloadTooLargeError(f"the message is over the {cap}-byte limit")
        try:
            fields = json.loads(message)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise InvalidRequestError(f"the message is not JSON: {exc}") from None
        kind = fields.get("type") if isinstance(fields, dict) else None
        if kind != _CREATE:
            refused = f"type: {kind!r} is not an event this server takes; send {_CREATE!r}"
            raise InvalidRequestError(refused, param="type")
        fields.pop("type")
        fields.pop("stream", None)  # implied
        return ResponsesRequest.model_validate({**fields, "stream": True})

    async def _error(self, status: int, body: dict[str, Any]) -> None:
        """An `error` event, the connection kept open: a streamed error event's fields, with the HTTP status
        as WebSocket mode adds it."""
        fields = error_event_fields(body.get("error") or {})
        await self._socket.send_json({"type": "error", "status": status, "sequence_number": 0, **fields})
