"""GET /playground: the browser chat page, static files shipped in the package (service/playground/), each
served under a strict Content-Security-Policy: scripts, styles and requests from this origin only, no
inline script or style, no frames, no forms posted elsewhere."""

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

from ragserve.errors import PageNotFoundError

__all__ = ["CONTENT_SECURITY_POLICY", "router"]

_FOLDER = Path(__file__).resolve().parent.parent / "playground"
_PAGE = "index.html"
_TYPES = {
    _PAGE: "text/html; charset=utf-8",
    "playground.js": "text/javascript; charset=utf-8",
    "playground.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
))  # fmt: skip
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["playground"], include_in_schema=False)


@router.get("/playground")
async def page() -> Response:
    """The browser chat page: a tenant's key, a question, the answer with its sources."""
    return _file(_PAGE)


@router.get("/playground/{name}")
async def asset(name: str) -> Response:
    if name not in _TYPES:
        raise PageNotFoundError(f"the playground has no file {name!r}")
    return _file(name)


def _file(name: str) -> Response:
    return Response(_read(name), media_type=_TYPES[name], headers=_HEADERS)


@cache
def _read(name: str) -> bytes:
    return (_FOLDER / name).read_bytes()
