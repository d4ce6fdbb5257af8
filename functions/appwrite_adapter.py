"""The Appwrite Functions side: turn open-runtimes' ``context`` into an ``ApiRequest`` and back.

Each ``functions/<name>/main.py`` builds one ``AppwriteFunction`` and calls it from ``main(context)``. Settings,
logging and the price book are built once per cold start (module globals survive warm executions); the
Appwrite store is opened per execution because its key (``x-appwrite-key``) is issued per execution.
"""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any

import structlog

from services.errors import BadRequest
from services.log_config import configure_logging
from services.pricing import PriceBook
from services.settings import Settings
from services.store import open_store

from .http_api import ApiApp, ApiRequest, ApiResponse, Caller, Role, dispatch
from .http_api.auth import USER_ID_HEADER, caller_from_appwrite
from .http_api.errors import error_response, internal_error_response
from .http_api.responses import CORRELATION_HEADER

log = structlog.get_logger("ai_usage.http")


def settings_from_appwrite_environment() -> Settings:
    """Settings for a function: ``AI_USAGE_*`` variables plus the endpoint and project Appwrite injects."""
    overrides: dict[str, Any] = {}
    endpoint = os.environ.get("APPWRITE_FUNCTION_API_ENDPOINT")
    project = os.environ.get("APPWRITE_FUNCTION_PROJECT_ID")
    if endpoint:
        overrides["appwrite_endpoint"] = endpoint
    if project:
        overrides["appwrite_project_id"] = project
    return Settings(**overrides)


def _body(req: Any) -> bytes:
    binary = getattr(req, "body_binary", None)
    if isinstance(binary, bytes | bytearray):
        return bytes(binary)
    text = getattr(req, "body_text", None)
    return text.encode() if isinstance(text, str) else b""


def appwrite_headers(raw: Any) -> tuple[dict[str, str], list[str]]:
    """``req.headers`` with lower-cased names, and the ``x-appwrite-*`` names that came more than once.

    Appwrite injects each ``x-appwrite-*`` header once. On a custom-domain execution it merges the client's
    headers in first and overwrites only the fields it injects (appwrite-facts.md 4.2), so a second copy
    whose name differs only in case (``X-Appwrite-User-Id`` next to ``x-appwrite-user-id``) is the client's:
    collapsing the two would let whichever came last decide who the caller is. Duplicates are counted before
    the names are collapsed: ``raw`` may be a dict with keys differing in case, a multi-dict whose ``items()``
    repeats a name, or hold a list of values for one name.
    """
    headers: dict[str, str] = {}
    seen: dict[str, int] = {}
    items = raw.items() if hasattr(raw, "items") else (raw or ())
    for name, value in items:
        key = str(name).lower()
        values = list(value) if isinstance(value, list | tuple) else [value]
        seen[key] = seen.get(key, 0) + len(values)
        if values:
            headers[key] = str(values[-1])
    repeated = sorted(key for key, count in seen.items() if count > 1 and key.startswith("x-appwrite-"))
    return headers, repeated


class AppwriteFunction:
    """One Appwrite function serving the routes of ``group``.

    ``signed_in_role`` is what a signed-in executor is in this function: ``Role.ADMIN`` where the function's
    ``execute`` permission admits only admins (``label:admin``), else ``Role.USER``. An execution without a user
    id is the game backend (``server``) only where ``AI_USAGE_APPWRITE_NO_USER_IS_SERVER`` says the function
    admits no guests; otherwise it is anonymous (see ``caller_from_appwrite``).
    """

    def __init__(self, group: str, signed_in_role: Role, settings: Settings | None = None) -> None:
        self.group = group
        self.signed_in_role = signed_in_role
        self._settings = settings
        self._price_book: PriceBook | None = None
        self._shared_app: ApiApp | None = None
        self._lock = threading.Lock()

    def _cold_start(self) -> Settings:
        with self._lock:
            if self._settings is None:
                self._settings = settings_from_appwrite_environment()
            if self._price_book is None:
                configure_logging(self._settings.log_format, self._settings.log_level)
                self._price_book = PriceBook.load(self._settings.prices_file)
            return self._settings

    def _app(self, settings: Settings, appwrite_key: str | None) -> tuple[ApiApp, bool]:
        """The app for this execution and whether it must be closed afterwards."""
        if appwrite_key and settings.appwrite_endpoint and settings.appwrite_project_id:
            store = open_store(settings, appwrite_key=appwrite_key)
            return ApiApp.from_settings(settings, store=store, price_book=self._price_book), True
        if self._shared_app is None:  # no per-execution key: the configured store (SQLite off Appwrite)
            self._shared_app = ApiApp.from_settings(settings, price_book=self._price_book)
        return self._shared_app, False

    def _caller(self, headers: dict[str, str], repeated: list[str], settings: Settings) -> Caller:
        """Who executed this; ``BadRequest`` when the headers cannot have come from Appwrite alone."""
        if repeated:
            raise BadRequest(
                f"header {', '.join(repeated)} was sent more than once (names differing only in case count as "
                "one); Appwrite sets each x-appwrite-* header once, so the execution is refused"
            )
        return caller_from_appwrite(
            headers.get(USER_ID_HEADER),
            signed_in_role=self.signed_in_role,
            admin_user_ids=settings.admin_user_ids,
            no_user_is_server=settings.appwrite_no_user_is_server,
        )

    def __call__(self, context: Any) -> Any:
        req = context.req
        headers, repeated = appwrite_headers(req.headers)
        # A repeated execution id may be the client's: then the correlation id is ours.
        execution_id = None if "x-appwrite-execution-id" in repeated else headers.get("x-appwrite-execution-id")
        correlation_id = execution_id or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()  # module globals, contextvars included, outlive an execution
        structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
        try:
            settings = self._cold_start()
        except Exception:  # settings cannot be built: log it for this execution, answer JSON
            log.exception("http.app_unavailable", correlation_id=correlation_id)
            return _render(context, internal_error_response(correlation_id))
        try:
            caller = self._caller(headers, repeated, settings)
        except BadRequest as exc:  # refused before any store is opened; names only, never header values
            log.warning("appwrite.execution_refused", reason=exc.message, headers=repeated)
            response = error_response(exc, correlation_id)
            response.headers[CORRELATION_HEADER] = correlation_id
            return _render(context, response)
        try:
            app, per_execution = self._app(settings, headers.get("x-appwrite-key"))
        except Exception:  # the store cannot be built
            log.exception("http.app_unavailable", correlation_id=correlation_id)
            return _render(context, internal_error_response(correlation_id))
        try:
            request = ApiRequest(
                method=str(req.method or "GET").upper(),
                path=str(req.path or "/"),
                query={str(name): str(value) for name, value in (req.query or {}).items()},
                headers=headers,
                body=_body(req),
                caller=caller,
                correlation_id=correlation_id,
            )
            response = dispatch(request, app, self.group)
        finally:
            if per_execution:
                app.close()
        if response.status == 401 and caller.role is Role.ANONYMOUS:
            # The likeliest cause on a deployment is a game backend whose API-key executions are anonymous.
            log.warning(
                "appwrite.anonymous_execution_refused",
                hint="an execution without a user id acts as the server only with "
                "AI_USAGE_APPWRITE_NO_USER_IS_SERVER=true, for a function whose execute permission admits no guests",
            )
        return _render(context, response)


def _render(context: Any, response: ApiResponse) -> Any:
    if response.is_json and response.chunks is None:
        return context.res.json(response.json_data(), statusCode=response.status, headers=dict(response.headers))
    # A page or an export: Appwrite's runtime sends a whole body (``res.binary``), with its content type.
    headers = {**response.headers, "content-type": response.content_type}
    return context.res.binary(response.whole_body(), statusCode=response.status, headers=headers)
