"""The HTTP edge: domain errors become JSON bodies in OpenAI's error shape; nothing leaks a traceback."""

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ragserve.errors import (
    AdapterNotFoundError,
    AuthError,
    ConflictError,
    DocumentNotFoundError,
    FeedbackFullError,
    FeedbackNotFoundError,
    IndexNotFoundError,
    InvalidRequestError,
    InvalidTenantError,
    ModelNotAllowedError,
    PageNotFoundError,
    PayloadTooLargeError,
    PromptTooLongError,
    RagserveError,
    ResponseNotFoundError,
    ShardingError,
    StateUnavailableError,
    StoreFormatError,
    StoreLockedError,
    StoreUnavailableError,
    TenantNotFoundError,
    TooManyRequestsError,
    UnsupportedMediaError,
    UpstreamError,
    VectorStoreNotFoundError,
)

__all__ = ["domain_error_body", "error_body", "install_error_handlers", "status_for", "validation_error_body"]

log = logging.getLogger("ragserve.service")
_TYPE_NAMES = frozenset({"str", "int", "float", "bool", "dict", "list", "none", "json-or-python"})

_STATUS: list[tuple[type[RagserveError], int, str]] = [
    (AuthError, 401, "authentication_error"),
    (ModelNotAllowedError, 404, "not_found_error"),
    (InvalidTenantError, 404, "not_found_error"),
    (AdapterNotFoundError, 404, "not_found_error"),
    (PageNotFoundError, 404, "not_found_error"),
    (PromptTooLongError, 400, "invalid_request_error"),
    (TooManyRequestsError, 429, "rate_limit_error"),
    (UnsupportedMediaError, 415, "invalid_request_error"),
    # OpenAI's answer to an exhausted quota; no Retry-After, since waiting alone does not free any.
    (FeedbackFullError, 429, "insufficient_quota"),
    (FeedbackNotFoundError, 404, "not_found_error"),
    (ConflictError, 409, "conflict_error"),
    (DocumentNotFoundError, 404, "not_found_error"),
    (VectorStoreNotFoundError, 404, "not_found_error"),
    (ResponseNotFoundError, 404, "not_found_error"),
    (PayloadTooLargeError, 413, "invalid_request_error"),
    (UpstreamError, 503, "service_unavailable"),
    (StateUnavailableError, 503, "service_unavailable"),
    (StoreUnavailableError, 503, "service_unavailable"),
    (StoreLockedError, 503, "service_unavailable"),
    (StoreFormatError, 503, "service_unavailable"),
    (IndexNotFoundError, 503, "service_unavailable"),
    (TenantNotFoundError, 404, "not_found_error"),
    (ShardingError, 503, "service_unavailable"),
]


def status_for(exc: RagserveError) -> tuple[int, str]:
    for kind, status, type_ in _STATUS:
        if isinstance(exc, kind):
            return status, type_
    return 400, "invalid_request_error"


def error_body(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, object]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def domain_error_body(exc: RagserveError) -> tuple[int, dict[str, object]]:
    """The status and OpenAI-shaped body of a domain error, with its `param` and `code` when it has them."""
    status, type_ = status_for(exc)
    if isinstance(exc, InvalidRequestError):
        return status, error_body(str(exc), type_, exc.code, exc.param)
    return status, error_body(str(exc), type_)


def _param(loc: tuple[object, ...]) -> str:
    """FastAPI's location of a bad value (`("body", "messages", 0, "content", "str")`) as OpenAI names the
    parameter (`messages.0.content`): without the part of the request, nor the union member pydantic tried."""
    parts = loc[1:] if loc and loc[0] in ("body", "query", "header", "path") else loc
    return ".".join(str(p) for p in parts if not (isinstance(p, str) and _is_union_member(p)))


def _is_union_member(name: str) -> bool:
    """pydantic's names for the members of a union it tried: `str`, `list[TextPart]`, `constrained-str`,
    `literal['a','b']`, a model's class name. Field names are lower-case identifiers, none of these."""
    return name in _TYPE_NAMES or not name[:1].islower() or any(c in name for c in "[-")


def validation_error_body(errors: Sequence[Any]) -> dict[str, object]:
    """pydantic's errors as one OpenAI-shaped body: each bad field once, with what every member of a union
    said of it; the first one is `param`."""
    problems: dict[str, list[str]] = {}
    for error in errors:
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        problems.setdefault(_param(tuple(error.get("loc", ()))), []).append(message)
    text = "; ".join(f"{param or 'body'}: {' or '.join(said)}" for param, said in problems.items())
    return error_body(
        text or "invalid request", "invalid_request_error", None, next(iter(problems), None) or None
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RagserveError)
    async def _domain(request: Request, exc: RagserveError) -> JSONResponse:
        status, body = domain_error_body(exc)
        headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, TooManyRequestsError) else None
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # 400, not FastAPI's 422: OpenAI's and vLLM's convention, which the SDKs raise as BadRequestError.
        return JSONResponse(validation_error_body(exc.errors()), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        message = str(exc.detail)
        if isinstance(exc.__cause__, UnicodeDecodeError):  # FastAPI's "error parsing the body", made precise
            bad = exc.__cause__
            message = f"the body is not valid UTF-8: byte 0x{bad.object[bad.start]:02x} at offset {bad.start}"
        return JSONResponse(error_body(message, type_), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse(error_body("internal error", "server_error"), status_code=500)
