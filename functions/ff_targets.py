"""functions-framework targets: the same routes as the Appwrite functions, over plain HTTP.

Run one function group, or every route on one port::

    functions-framework --source functions/ff_targets.py --target all_routes
    ai-usage serve            # the same app under gunicorn, with a generated key if none is configured

Each target turns the Flask request into an ``ApiRequest`` and calls ``dispatch``; the app (settings, store,
keys) is built once per process on first use, or set beforehand through ``PROCESS_APP``.
"""

from __future__ import annotations

import io
import uuid

import flask
import functions_framework
import structlog
from werkzeug.exceptions import HTTPException

from functions.http_api import PROCESS_APP, ApiRequest, ApiResponse, body_limit, dispatch
from functions.http_api.dispatch import CORRELATION_HEADER
from functions.http_api.schemas import ErrorBody, ErrorDetail

log = structlog.get_logger("ai_usage.http")

# A refused body up to this size is read and dropped, so the client reliably sees the 413 on a reusable
# connection; past it the connection is closed instead of reading any further.
DRAIN_LIMIT = 64 * 1024 * 1024
_CHUNK = 64 * 1024


def _read_body(request: flask.Request, limit: int) -> tuple[bytes, int]:
    """At most ``limit + 1`` bytes of the body and the body's size as far as it is known."""
    declared = request.content_length
    if declared is not None and declared > limit:
        return b"", declared  # refused on its declared size, without reading it
    body = request.stream.read(limit + 1)
    return body, len(body)


def _drain(request: flask.Request) -> bool:
    """Read what is left of the body (bounded); False when the connection should be closed instead."""
    declared = request.content_length
    if declared is not None and declared > DRAIN_LIMIT:
        drained = False
    else:
        remaining = DRAIN_LIMIT
        while remaining > 0 and (chunk := request.stream.read(min(_CHUNK, remaining))):
            remaining -= len(chunk)
        drained = remaining > 0
    # functions-framework reads the whole body after every response; give it nothing left to read.
    request.stream = io.BytesIO()  # type: ignore[misc]
    return drained


def serve(request: flask.Request, group: str | None = None) -> flask.Response:
    """Answer a Flask request with the routes of ``group`` (``None``: every route)."""
    path = request.path
    body, size = _read_body(request, body_limit(request.method, path, group))
    api_request = ApiRequest(
        method=request.method,
        path=path,
        query={name: values[-1] for name, values in request.args.lists()},  # last one wins, as on Appwrite
        headers={name.lower(): value for name, value in request.headers.items()},
        body=body,
        body_size=size,
    )
    try:
        app = PROCESS_APP.get()
    except Exception:  # the store or settings cannot be built: say so in the log, not to the caller
        correlation_id = uuid.uuid4().hex
        log.exception("http.app_unavailable", correlation_id=correlation_id)
        response = _error(500, "internal_error", "the service could not start; see the server log", correlation_id)
    else:
        response = dispatch(api_request, app, group)
    return _render(response, request)


def _error(status: int, code: str, message: str, correlation_id: str) -> ApiResponse:
    detail = ErrorDetail(code=code, message=message, correlation_id=correlation_id)
    return ApiResponse(status, ErrorBody(error=detail), {CORRELATION_HEADER: correlation_id})


def _render(response: ApiResponse, request: flask.Request) -> flask.Response:
    headers = dict(response.headers)
    if not _drain(request):
        headers["Connection"] = "close"
    return flask.Response(response.json_bytes(), response.status, headers, mimetype="application/json")


# Paths Flask itself refuses before any target runs (a newline in the path, /favicon.ico...) also answer JSON.
# Under functions-framework this registers on its Flask app; a plain import gets a no-op decorator.
@functions_framework.errorhandler(HTTPException)
def _flask_error(exc: HTTPException) -> flask.Response:
    status = exc.code or 500
    code = "not_found" if status == 404 else f"http_{status}"
    response = _error(status, code, exc.description or exc.name, uuid.uuid4().hex)
    return _render(response, flask.request)


@functions_framework.http
def all_routes(request: flask.Request) -> flask.Response:
    """Every route on one port."""
    return serve(request)


@functions_framework.http
def usage_ingest(request: flask.Request) -> flask.Response:
    """POST /v1/usage and /v1/usage/batch (the server key only)."""
    return serve(request, "ingest")


@functions_framework.http
def usage_reports(request: flask.Request) -> flask.Response:
    """Per-user summaries, the rate limiter's count, session cost, prices."""
    return serve(request, "reports")


@functions_framework.http
def usage_admin(request: flask.Request) -> flask.Response:
    """Global daily cost plus every read route, for admins."""
    return serve(request, "admin")
