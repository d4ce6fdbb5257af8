"""``dispatch(request, app)``: route, limit, authenticate, parse, handle, map errors, log one line.

Order: the route (404/405) first, then the body size (413, known without reading it), then the caller (401/403)
so nothing from an unauthenticated caller is parsed, then the JSON body (400) and query (422), then the handler.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from pydantic import BaseModel, ValidationError

from services.errors import PayloadTooLarge, ServiceError, ValidationFailed
from services.usage_events import field_errors

from .app import ApiApp
from .auth import authorize, caller_from_authorization
from .errors import error_response, internal_error_response
from .handlers import Call, Reply
from .openapi import openapi_document
from .request import ApiRequest, RawBody, parse_json_body
from .responses import CORRELATION_HEADER, ApiResponse
from .routes import Route, match
from .schemas import RawBodyModel, check_path_ids

log = structlog.get_logger("ai_usage.http")

_LOGGED_FIELDS = ("request_id", "user_id", "session_id", "model")
_MAX_LOGGED_CHARS = 200


def dispatch(request: ApiRequest, app: ApiApp, group: str | None = None) -> ApiResponse:
    """Answer one request with the routes of ``group`` (``None``: every route). Never raises for a request."""
    started = time.perf_counter()
    correlation_id = request.correlation_id or uuid.uuid4().hex
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
    pattern: str | None = None
    route: Route | None = None
    try:
        route, params = match(request.method, request.path, group)
        pattern = route.pattern
        _bind_known(params)
        response = _handle(route, params, request, app, group)
        # Rendered here, inside the error handling, so an answer that cannot be serialised is a logged JSON 500
        # on every runtime rather than the server's own HTML page.
        response.render()
    except ServiceError as exc:
        if exc.status >= 500:  # the detail (a file, the store's own words) goes to the log, never to the caller
            log.warning("http.service_error", code=exc.code, error=exc.message, cause=repr(exc.__cause__))
        failure = exc
        response = _render_error(lambda: error_response(failure, correlation_id), correlation_id)
    except Exception:
        # Logged with its traceback under the correlation id; the caller gets the id and nothing else.
        log.exception("http.unhandled_error", route=pattern, method=request.method)
        response = _render_error(lambda: internal_error_response(correlation_id), correlation_id)
    if response.status >= 400 and route is not None and route.error_answer is not None:
        json_error, answer = response, route.error_answer
        response = _render_error(lambda: answer(request, json_error), correlation_id)
    response.headers[CORRELATION_HEADER] = correlation_id
    duration_ms = round((time.perf_counter() - started) * 1000, 3)
    line = log.error if response.status >= 500 else log.info
    line("http.request", method=request.method, route=pattern or request.path[:_MAX_LOGGED_CHARS],
         status=response.status, duration_ms=duration_ms)  # fmt: skip
    return response


def _render_error(build: Callable[[], ApiResponse], correlation_id: str) -> ApiResponse:
    try:
        response = build()
        response.render()
    except Exception:  # an error message that cannot be rendered: the constant 500 always can
        log.exception("http.render_error")
        response = internal_error_response(correlation_id)
        response.render()
    return response


def _handle(route: Route, params: dict[str, str], request: ApiRequest, app: ApiApp, group: str | None) -> ApiResponse:
    if request.size > route.body_limit:
        raise PayloadTooLarge(f"the body is {request.size} bytes; this route takes at most {route.body_limit}")
    caller = request.caller or caller_from_authorization(request.headers.get("authorization"), app.auth)
    structlog.contextvars.bind_contextvars(role=caller.role.value)
    authorize(caller, route.roles, route.owner_param, params)
    check_path_ids(params)
    if route.body is None:
        body = None
    elif issubclass(route.body, RawBodyModel):  # the handler decodes it by content type (OTLP: protobuf too)
        body = RawBody.of(request)
    else:
        body = parse_json_body(request.body)
    if isinstance(body, dict):
        _bind_known(body)
    call = Call(
        service=app.service,
        caller=caller,
        params=params,
        query=_parse_query(route.query, request.query),
        body=body,
        openapi=lambda: openapi_document(group),
    )
    result = route.handler(call)
    if isinstance(result, Reply):
        return ApiResponse(result.status, result.payload, dict(result.headers))
    if isinstance(result, ApiResponse):  # a page or an export, with its own content type
        return result
    return ApiResponse(route.status, result)


def _bind_known(values: Mapping[str, Any]) -> None:
    known = {name: values[name][:_MAX_LOGGED_CHARS] for name in _LOGGED_FIELDS if isinstance(values.get(name), str)}
    if known:
        structlog.contextvars.bind_contextvars(**known)


def _parse_query(model: type[BaseModel] | None, query: Mapping[str, str]) -> BaseModel | None:
    if model is None:
        return None
    try:
        return model.model_validate(dict(query))
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc)) from None
