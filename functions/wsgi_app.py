"""The WSGI side: turn a WSGI environ into an ``ApiRequest`` and an ``ApiResponse`` back into bytes.

``ai-usage serve`` runs ``make_wsgi_app()`` under granian; the functions-framework targets in ``ff_targets``
use the same request reading on Flask's environ. Bodies are read only up to the route's limit: a body refused
on its declared size is dropped unread (up to ``DRAIN_LIMIT``) so the client still gets its 413.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import IO, Any
from urllib.parse import parse_qsl

import structlog
from werkzeug.wsgi import get_content_length, get_input_stream

from functions.http_api import PROCESS_APP, ApiRequest, ApiResponse, AppSlot, body_limit, dispatch
from functions.http_api.errors import internal_error_response

log = structlog.get_logger("ai_usage.http")

# A refused body up to this size is read and dropped, so the client reliably sees the 413 on a reusable
# connection; past it the connection is closed instead of reading any further.
DRAIN_LIMIT = 64 * 1024 * 1024
_CHUNK = 64 * 1024

StartResponse = Callable[..., Any]


def _wsgi_text(value: str) -> str:
    # PEP 3333 hands over URL bytes as latin-1 text; the API speaks UTF-8.
    return value.encode("latin-1").decode("utf-8", "replace")


def request_from_environ(environ: dict[str, Any], stream: IO[bytes], group: str | None) -> ApiRequest:
    """The ``ApiRequest`` for a WSGI call; ``stream`` is the body, already bounded by its Content-Length."""
    method = environ["REQUEST_METHOD"].upper()
    path = _wsgi_text(environ.get("PATH_INFO", "")) or "/"
    limit = body_limit(method, path, group)
    declared = get_content_length(environ)
    if declared is not None and declared > limit:
        body, size = b"", declared  # refused on its declared size, without reading it
    else:
        body = stream.read(limit + 1)
        size = len(body)
    headers = {name[5:].replace("_", "-").lower(): value for name, value in environ.items() if name.startswith("HTTP_")}
    for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(name):
            headers[name.replace("_", "-").lower()] = environ[name]
    query = dict(parse_qsl(_wsgi_text(environ.get("QUERY_STRING", "")), keep_blank_values=True))  # last one wins
    return ApiRequest(method=method, path=path, query=query, headers=headers, body=body, body_size=size)


def discard_body(stream: IO[bytes], declared: int | None) -> bool:
    """Read what is left of the body (bounded); False when the connection should be closed instead."""
    if declared is not None and declared > DRAIN_LIMIT:
        return False
    remaining = DRAIN_LIMIT
    while remaining > 0 and (chunk := stream.read(min(_CHUNK, remaining))):
        remaining -= len(chunk)
    return remaining > 0


def answer(request: ApiRequest, slot: AppSlot, group: str | None) -> ApiResponse:
    """Dispatch ``request`` to the process's app; a failure to build the app is a logged 500, not a crash."""
    try:
        app = slot.get()
    except Exception:  # the store or settings cannot be built: say so in the log, not to the caller
        correlation_id = uuid.uuid4().hex
        log.exception("http.app_unavailable", correlation_id=correlation_id)
        return internal_error_response(correlation_id)
    return dispatch(request, app, group)


def make_wsgi_app(group: str | None = None, slot: AppSlot = PROCESS_APP) -> Callable[..., Iterable[bytes]]:
    """A WSGI application serving the routes of ``group`` (``None``: every route) with ``slot``'s app."""

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        stream = get_input_stream(environ, safe_fallback=True)
        response = answer(request_from_environ(environ, stream, group), slot, group)
        headers = [("Content-Type", response.content_type)]
        if response.chunks is None:
            body = response.render()
            headers.append(("Content-Length", str(len(body))))
        headers += list(response.headers.items())
        if not discard_body(stream, get_content_length(environ)):
            headers.append(("Connection", "close"))
        start_response(f"{response.status} {HTTPStatus(response.status).phrase}", headers)
        return [body] if response.chunks is None else response.chunks

    return application
