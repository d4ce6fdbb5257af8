"""The ``usage-dashboard`` function's adapter: the admin dashboard's page, to anyone, set up for Appwrite.

A page needs no store, no key and no price book, so this adapter opens none (the function has no scopes). Once per
cold start it reads where the page signs admins in: the endpoint and project Appwrite injects into every function
(appwrite-facts 4.3) and the admin function's id. It answers ``GET /dashboard`` with the page; any other path or
method answers as the route table says for the ``dashboard`` group (404, 405), in JSON, with a correlation id.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import structlog

from functions.appwrite_adapter import appwrite_headers, settings_from_appwrite_environment
from functions.http_api import ApiResponse
from functions.http_api.dashboard import AppwriteSignIn, appwrite_page
from functions.http_api.errors import error_response, internal_error_response
from functions.http_api.responses import CORRELATION_HEADER
from functions.http_api.routes import match
from services.errors import NotFound, ServiceError
from services.log_config import configure_logging
from services.settings import Settings

log = structlog.get_logger("ai_usage.http")

GROUP = "dashboard"
ADMIN_FUNCTION_VARIABLE = "AI_USAGE_DASHBOARD_ADMIN_FUNCTION_ID"
# Which variable each field of the page's configuration comes from, to name it when it is wrong.
_VARIABLES = {
    "endpoint": "APPWRITE_FUNCTION_API_ENDPOINT",
    "project_id": "APPWRITE_FUNCTION_PROJECT_ID",
    "admin_function_id": ADMIN_FUNCTION_VARIABLE,
}


def sign_in_from(settings: Settings) -> AppwriteSignIn:
    """The page's Appwrite configuration; ``ValueError`` naming the variable that is missing or malformed."""
    values = {
        "endpoint": settings.appwrite_endpoint or "",
        "project_id": settings.appwrite_project_id or "",
        "admin_function_id": settings.dashboard_admin_function_id,
    }
    for field, value in values.items():
        if not value:
            raise ValueError(f"{_VARIABLES[field]}: required (Appwrite sets it for every function)")
    try:
        return AppwriteSignIn(**values)
    except ValueError as exc:
        field, _, rule = str(exc).partition(": ")
        raise ValueError(f"{_VARIABLES.get(field, field)}: {rule}") from None


class DashboardFunction:
    """``main(context)`` of ``usage-dashboard``: serves the routes of the ``dashboard`` group (the page)."""

    group = GROUP

    def __init__(self) -> None:
        self._sign_in: AppwriteSignIn | None = None
        self._lock = threading.Lock()

    def _cold_start(self) -> AppwriteSignIn:
        with self._lock:
            if self._sign_in is None:
                settings = settings_from_appwrite_environment()
                configure_logging(settings.log_format, settings.log_level)
                self._sign_in = sign_in_from(settings)
            return self._sign_in

    def __call__(self, context: Any) -> Any:
        started = time.perf_counter()
        req = context.req
        headers, _ = appwrite_headers(req.headers)  # no caller is read: the page is everyone's
        correlation_id = headers.get("x-appwrite-execution-id") or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()  # module globals, contextvars included, outlive an execution
        structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
        method, path = str(req.method or "GET").upper(), str(req.path or "/")
        response = self._answer(method, path, correlation_id)
        response.headers[CORRELATION_HEADER] = correlation_id
        line = log.error if response.status >= 500 else log.info
        line("http.request", method=method, route=path[:200], status=response.status,
             duration_ms=round((time.perf_counter() - started) * 1000, 3))  # fmt: skip
        return _render(context, response)

    def _answer(self, method: str, path: str, correlation_id: str) -> ApiResponse:
        try:
            sign_in = self._cold_start()
        except Exception as exc:  # a variable is missing or malformed: the log line names it, the caller gets the id
            log.exception("http.app_unavailable", error=str(exc))
            return internal_error_response(correlation_id)
        try:
            route, _ = match(method, path, GROUP)
            if route.name != "dashboard":  # a route added to the group needs its own answer here
                raise NotFound(f"no route for {path}")
        except ServiceError as exc:
            return error_response(exc, correlation_id)
        return appwrite_page(sign_in)


def _render(context: Any, response: ApiResponse) -> Any:
    if response.is_json:
        return context.res.json(response.json_data(), statusCode=response.status, headers=dict(response.headers))
    headers = {**response.headers, "content-type": response.content_type}
    return context.res.binary(response.whole_body(), statusCode=response.status, headers=headers)
