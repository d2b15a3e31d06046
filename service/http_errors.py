"""The HTTP edge: domain errors become JSON bodies in OpenAI's error shape; nothing leaks a traceback."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ragserve.errors import (
    AdapterNotFoundError,
    AuthError,
    IndexNotFoundError,
    InvalidTenantError,
    ModelNotAllowedError,
    PromptTooLongError,
    RagserveError,
    StoreLockedError,
    StoreUnavailableError,
    TooManyRequestsError,
    UpstreamError,
    validation_problems,
)

__all__ = ["error_body", "install_error_handlers", "status_for"]

log = logging.getLogger("ragserve.service")

_STATUS: list[tuple[type[RagserveError], int, str]] = [
    (AuthError, 401, "authentication_error"),
    (ModelNotAllowedError, 404, "not_found_error"),
    (InvalidTenantError, 404, "not_found_error"),
    (AdapterNotFoundError, 404, "not_found_error"),
    (PromptTooLongError, 400, "invalid_request_error"),
    (TooManyRequestsError, 429, "rate_limit_error"),
    (UpstreamError, 503, "service_unavailable"),
    (StoreUnavailableError, 503, "service_unavailable"),
    (StoreLockedError, 503, "service_unavailable"),
    (IndexNotFoundError, 503, "service_unavailable"),
]


def status_for(exc: RagserveError) -> tuple[int, str]:
    for kind, status, type_ in _STATUS:
        if isinstance(exc, kind):
            return status, type_
    return 400, "invalid_request_error"


def error_body(message: str, type_: str, code: str | None = None) -> dict[str, object]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RagserveError)
    async def _domain(request: Request, exc: RagserveError) -> JSONResponse:
        status, type_ = status_for(exc)
        headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, TooManyRequestsError) else None
        return JSONResponse(error_body(str(exc), type_), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = validation_problems(exc)
        return JSONResponse(
            error_body(problems or "invalid request", "invalid_request_error"), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(error_body(str(exc.detail), type_), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse(error_body("internal error", "server_error"), status_code=500)
