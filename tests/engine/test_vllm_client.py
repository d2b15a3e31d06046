"""VllmClient's HTTP handling, against a small stand-in server that speaks vLLM's streaming format."""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from ragserve.engine.vllm_client import VllmClient
from ragserve.errors import ModelNotAllowedError, UpstreamError
from tests.support.servers import running_app

CHUNK = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "hi"}}]}


def _stand_in(client_ports: list[int]) -> FastAPI:
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        assert request.client is not None
        client_ports.append(request.client.port)
        model = (await request.json())["model"]
        if model == "slow":
            await asyncio.sleep(1)
        if model == "missing":
            return JSONResponse({"error": {"message": "The model `missing` does not exist."}}, 404)

        async def events() -> AsyncIterator[str]:
            for _ in range(3):
                yield f"data: {json.dumps(CHUNK)}\n\n"
            if model != "cut-off":
                yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


@pytest.fixture(scope="module")
def stand_in() -> Iterator[tuple[str, list[int]]]:
    ports: list[int] = []
    with running_app(_stand_in(ports)) as url:
        yield url, ports


async def _stream(client: VllmClient, model: str) -> list[dict[str, object]]:
    return [chunk async for chunk in client.stream_chat({"model": model, "messages": []})]


def test_streams_in_a_row_reuse_one_connection(stand_in: tuple[str, list[int]]) -> None:
    url, ports = stand_in

    async def twice() -> list[list[dict[str, object]]]:
        client = VllmClient(url)
        try:
            return [await _stream(client, "m"), await _stream(client, "m")]
        finally:
            await client.aclose()

    ports.clear()
    first, second = asyncio.run(twice())
    assert first == second == [CHUNK] * 3
    assert len(ports) == 2 and ports[0] == ports[1]  # a new connection per request costs a connect


@pytest.mark.parametrize(
    ("model", "error", "message"),
    [("cut-off", UpstreamError, "closed the stream before it finished"),
     ("missing", ModelNotAllowedError, "does not exist")],
)  # fmt: skip
def test_stream_failures_are_domain_errors(
    stand_in: tuple[str, list[int]], model: str, error: type[Exception], message: str
) -> None:
    async def stream() -> None:
        client = VllmClient(stand_in[0])
        try:
            await _stream(client, model)
        finally:
            await client.aclose()

    with pytest.raises(error, match=message):
        asyncio.run(stream())


def test_an_unreachable_server_is_an_upstream_error_not_a_hang() -> None:
    async def unreachable() -> tuple[bool, Exception | None]:
        client = VllmClient("http://127.0.0.1:9", connect_timeout_s=2)
        try:
            healthy = await client.healthy()
            try:
                await client.served_models()
            except UpstreamError as exc:
                return healthy, exc
            return healthy, None
        finally:
            await client.aclose()

    healthy, error = asyncio.run(unreachable())
    assert not healthy
    assert isinstance(error, UpstreamError) and "unreachable" in str(error)


def test_a_refused_connection_marks_vllm_unreachable_until_marked_back() -> None:
    async def scenario() -> list[bool]:
        client = VllmClient("http://127.0.0.1:9", connect_timeout_s=2)
        seen = [client.reachable]
        with pytest.raises(UpstreamError):
            await client.served_models()
        seen.append(client.reachable)
        client.mark_reachable()
        seen.append(client.reachable)
        await client.healthy()
        seen.append(client.reachable)
        await client.aclose()
        return seen

    assert asyncio.run(scenario()) == [True, False, True, False]


@pytest.mark.parametrize("cut", ["close", "reset"])
def test_a_stream_cut_off_mid_body_marks_vllm_unreachable(cut: str) -> None:
    """What a killed vLLM does to a stream: the connection ends inside the chunked body, cleanly or not."""

    async def one_chunk_then_gone(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        event = f"data: {json.dumps(CHUNK)}\n\n".encode()
        writer.write(head + b"%x\r\n%s\r\n" % (len(event), event))
        await writer.drain()
        if cut == "close":
            writer.close()
        else:
            writer.transport.abort()

    async def scenario() -> tuple[list[dict[str, object]], bool]:
        server = await asyncio.start_server(one_chunk_then_gone, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = VllmClient(f"http://127.0.0.1:{port}")
        chunks: list[dict[str, object]] = []
        try:
            with pytest.raises(UpstreamError, match="stream failed"):
                async for chunk in client.stream_chat({"model": "m", "messages": []}):
                    chunks.append(chunk)
            return chunks, client.reachable
        finally:
            await client.aclose()
            server.close()

    assert asyncio.run(scenario()) == ([CHUNK], False)


def test_a_silent_vllm_is_a_time_out_not_a_lost_vllm(stand_in: tuple[str, list[int]]) -> None:
    async def scenario() -> bool:
        client = VllmClient(stand_in[0], timeout_s=0.2)
        try:
            with pytest.raises(UpstreamError):
                await _stream(client, "slow")
            return client.reachable
        finally:
            await client.aclose()

    assert asyncio.run(scenario())
