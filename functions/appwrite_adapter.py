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

from services.log_config import configure_logging
from services.price_book import PriceBook
from services.settings import Settings
from services.store import open_store

from .http_api import ApiApp, ApiRequest, ApiResponse, Role, dispatch
from .http_api.auth import caller_from_appwrite
from .http_api.errors import internal_error_response

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


class AppwriteFunction:
    """One Appwrite function serving the routes of ``group``.

    ``signed_in_role`` is what a signed-in executor is in this function: ``Role.ADMIN`` where the function's
    ``execute`` permission admits only admins (``label:admin``), else ``Role.USER``. An execution without a user
    id was made with an API key: the game backend, role ``server``.
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

    def __call__(self, context: Any) -> Any:
        req = context.req
        headers = {str(name).lower(): str(value) for name, value in (req.headers or {}).items()}
        correlation_id = headers.get("x-appwrite-execution-id") or uuid.uuid4().hex
        try:
            settings = self._cold_start()
            app, per_execution = self._app(settings, headers.get("x-appwrite-key"))
        except Exception:  # settings or store cannot be built: log it for this execution, answer JSON
            log.exception("http.app_unavailable", correlation_id=correlation_id)
            return _render(context, internal_error_response(correlation_id))
        try:
            caller = caller_from_appwrite(
                headers.get("x-appwrite-user-id"),
                signed_in_role=self.signed_in_role,
                admin_user_ids=settings.admin_user_ids,
            )
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
        return _render(context, response)


def _render(context: Any, response: ApiResponse) -> Any:
    return context.res.json(response.json_data(), statusCode=response.status, headers=dict(response.headers))
