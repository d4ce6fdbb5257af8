"""One table from the service's error tree to HTTP: status, headers and the JSON error body.

Unknown exceptions become a 500 that carries only a correlation id; the traceback goes to the log line with
the same id, never to the caller.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from models.ai_usage import FieldError
from services.errors import BadRequest, MethodNotAllowed, ServiceError, StoreError, Unauthorized

from .responses import CORRELATION_HEADER, ApiResponse
from .schemas import ErrorBody, ErrorDetail

DEFAULT_RETRY_AFTER_SECONDS = 1


class InvalidBody(BadRequest):
    """The body is not JSON (or not the JSON shape the route takes); ``fields`` names what is wrong."""

    code = "invalid_body"

    def __init__(self, message: str, field: str = "body") -> None:
        super().__init__(message)
        self.fields = [FieldError(field=field, message=message)]


class RouteMethodNotAllowed(MethodNotAllowed):
    def __init__(self, method: str, allowed: Sequence[str]) -> None:
        super().__init__(f"{method} is not allowed here; allowed: {', '.join(allowed)}")
        self.allowed = list(allowed)


def error_response(exc: ServiceError, correlation_id: str) -> ApiResponse:
    """The answer for an error the service raised on purpose."""
    headers: dict[str, str] = {}
    if isinstance(exc, StoreError):
        retry = exc.retry_after if exc.retry_after is not None else DEFAULT_RETRY_AFTER_SECONDS
        headers["Retry-After"] = str(max(1, math.ceil(retry)))
    elif isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="ai-usage"'
    elif isinstance(exc, RouteMethodNotAllowed):
        headers["Allow"] = ", ".join(exc.allowed)
    detail = ErrorDetail(
        code=exc.code,
        message=exc.message,
        fields=list(getattr(exc, "fields", [])),
        correlation_id=correlation_id,
    )
    return ApiResponse(exc.status, ErrorBody(error=detail), headers)


def internal_error_response(correlation_id: str) -> ApiResponse:
    """The answer for a failure nobody planned for: no detail beyond the id that finds the log line."""
    message = f"internal error; the server log has the details under correlation id {correlation_id}"
    return plain_error_response(500, "internal_error", message, correlation_id)


def plain_error_response(status: int, code: str, message: str, correlation_id: str) -> ApiResponse:
    """An error body for failures outside ``dispatch`` (the app cannot be built, the server refused the path)."""
    detail = ErrorDetail(code=code, message=message, correlation_id=correlation_id)
    return ApiResponse(status, ErrorBody(error=detail), {CORRELATION_HEADER: correlation_id})
