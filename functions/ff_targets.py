"""functions-framework targets: the same routes as the Appwrite functions, over plain HTTP.

Run one function group, or every route on one port::

    functions-framework --source functions/ff_targets.py --target all_routes

Each target turns the Flask request into an ``ApiRequest`` (as ``wsgi_app`` does for ``ai-usage serve``) and
calls ``dispatch``; the app (settings, store, keys) is built once per process on first use, or set beforehand
through ``PROCESS_APP``.
"""

from __future__ import annotations

import io
import uuid

import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from functions.http_api import PROCESS_APP, ApiResponse
from functions.http_api.errors import plain_error_response
from functions.wsgi_app import answer, discard_body, request_from_environ


def serve(request: flask.Request, group: str | None = None) -> flask.Response:
    """Answer a Flask request with the routes of ``group`` (``None``: every route)."""
    response = answer(request_from_environ(request.environ, request.stream, group), PROCESS_APP, group)
    return _render(response, request)


def _render(response: ApiResponse, request: flask.Request) -> flask.Response:
    headers = dict(response.headers)
    if not discard_body(request.stream, request.content_length):
        headers["Connection"] = "close"
    # functions-framework reads the whole body after every response; give it nothing left to read.
    request.stream = io.BytesIO()  # type: ignore[misc]
    # An export streams its chunks as the WSGI adapter does (bounded memory, page by page), not joined first.
    body = response.render() if response.chunks is None else response.chunks
    return flask.Response(body, response.status, headers, content_type=response.content_type)


# Paths Flask itself refuses before any target runs (a newline in the path, /favicon.ico...) also answer JSON.
# Under functions-framework this registers on its Flask app; a plain import gets a no-op decorator.
@functions_framework.errorhandler(HTTPException)
def _flask_error(exc: HTTPException) -> flask.Response:
    status = exc.code or 500
    code = "not_found" if status == 404 else f"http_{status}"
    response = plain_error_response(status, code, exc.description or exc.name, uuid.uuid4().hex)
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
