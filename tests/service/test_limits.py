"""What one client may hold, against a real uvicorn server on a loopback port: stalled and oversized bodies,
connections past the limit, idle keep-alive connections. Raw sockets, so nothing is hidden by a client."""

import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any

from fastapi import FastAPI, Request

from ragserve.service.limits import RequestBodyLimits
from ragserve.settings import Settings
from tests.support.servers import running_app

STALLED = (
    b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Length: 1000\r\n\r\n" + b"0123456789"
)
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"


def _app(settings: Settings) -> FastAPI:
    """A route that reads its body, behind the same middleware as the service's, with the same settings."""
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(
        RequestBodyLimits, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s
    )
    return app


@contextmanager
def _server(**options: Any) -> Iterator[tuple[str, int]]:
    settings = Settings(**options)
    with running_app(_app(settings), settings) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def _connect(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=10)
    sock.settimeout(10)
    return sock


def _until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a socket timeout fails the test)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _one_response(sock: socket.socket) -> bytes:
    """One response on a kept-alive connection: its headers and its Content-Length bytes of body."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def _error(response: bytes) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(response.partition(b"\r\n\r\n")[2])["error"]
    return error


def test_stalled_uploads_are_answered_408_and_closed_within_the_body_timeout() -> None:
    with _server(body_timeout_s=1) as address, ExitStack() as stack:
        socks = [stack.enter_context(_connect(address)) for _ in range(20)]
        started = time.monotonic()
        for sock in socks:
            sock.sendall(STALLED)
        with ThreadPoolExecutor(len(socks)) as pool:
            responses = list(pool.map(_until_closed, socks))
        elapsed = time.monotonic() - started
    assert elapsed < 1 + 2, f"20 stalled uploads took {elapsed:.1f} s to be dropped"
    assert [_status(r) for r in responses] == [408] * 20
    error = _error(responses[0])
    assert (error["code"], error["type"]) == ("request_timeout", "invalid_request_error")
    assert "stalled" in error["message"]


def test_a_slow_body_whose_chunks_keep_coming_is_read_whole() -> None:
    with _server(body_timeout_s=1) as address, _connect(address) as sock:
        sock.sendall(STALLED[: -len(b"0123456789")])
        for _ in range(4):  # 1000 bytes over 2 s, each chunk well within the 1 s timeout
            time.sleep(0.5)
            sock.sendall(b"x" * 250)
        response = _one_response(sock)
    assert _status(response) == 200
    assert json.loads(response.partition(b"\r\n\r\n")[2]) == {"bytes": 1000}


def test_a_chunked_body_over_the_cap_is_413_not_a_parse_error() -> None:
    chunk = b"x" * 1500
    request = (
        b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
        + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n0\r\n\r\n"
    )  # fmt: skip
    with _server(max_body_bytes=1024) as address, _connect(address) as sock:
        sock.sendall(request)
        response = _until_closed(sock)
    assert _status(response) == 413
    assert _error(response)["code"] == "request_too_large"


def test_connections_past_the_limit_are_refused_with_503_and_closed() -> None:
    limit = 4
    with _server(max_connections=limit, keep_alive_s=60) as address, ExitStack() as stack:
        statuses = []
        for _ in range(limit + 5):  # every connection stays open unless the server closes it
            sock = stack.enter_context(_connect(address))
            sock.sendall(HEALTHZ)
            response = _one_response(sock)
            statuses.append(_status(response))
            if _status(response) == 503:
                assert _until_closed(sock) == b""
        served = statuses.count(200)
        assert 0 < served <= limit
        assert statuses == [200] * served + [503] * (limit + 5 - served)
        stack.close()  # the held connections go, and the server takes new ones again
        time.sleep(0.2)
        with _connect(address) as sock:
            sock.sendall(HEALTHZ)
            assert _status(_one_response(sock)) == 200


def test_an_idle_keep_alive_connection_is_closed_after_keep_alive_s() -> None:
    with _server(keep_alive_s=1) as address, _connect(address) as sock:
        sock.sendall(HEALTHZ)
        assert _status(_one_response(sock)) == 200
        started = time.monotonic()
        assert _until_closed(sock) == b""
    assert time.monotonic() - started < 1 + 2
