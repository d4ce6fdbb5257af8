"""A real HTTP server for the HTTP tests, on 127.0.0.1 on a thread, with either adapter: the
functions-framework app (``ff``) or the plain WSGI app ``ai-usage serve`` runs under granian (``wsgi``).

The app is built from explicit parts (store, price book, clock, keys), so a test can make the store fail.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import functions_framework
import requests
import structlog
from werkzeug.serving import make_server

from functions import ff_targets
from functions.http_api import PROCESS_APP, ApiApp, AuthConfig
from functions.wsgi_app import make_wsgi_app
from services.pricing import PriceBook
from services.settings import Settings
from services.store.sqlite_store import SQLiteUsageStore
from services.usage_tracking_service import UsageTrackingService

SERVER_KEY = "server-key-for-tests-0123456789"
ADMIN_KEY = "admin-key-for-tests-9876543210"
NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
TODAY = NOW.date().isoformat()
SERVER = {"Authorization": f"Bearer {SERVER_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


class FlakyStore:
    """A real store that fails on demand: ``fail_reads_with`` is raised by every rollup read and ``ping``."""

    def __init__(self, inner: SQLiteUsageStore) -> None:
        self.inner = inner
        self.fail_reads_with: BaseException | None = None

    def _maybe_fail(self) -> None:
        if self.fail_reads_with is not None:
            raise self.fail_reads_with

    def get_rollups(self, *args: Any, **kwargs: Any) -> Any:
        self._maybe_fail()
        return self.inner.get_rollups(*args, **kwargs)

    def ping(self) -> None:
        self._maybe_fail()
        self.inner.ping()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@cache
def price_book() -> PriceBook:
    return PriceBook.load()


def make_app(db_path: Path, store: Any = None) -> ApiApp:
    store = store if store is not None else SQLiteUsageStore(db_path)
    service = UsageTrackingService(store, price_book(), clock=lambda: NOW, settings=Settings(db_path=db_path))
    return ApiApp(service=service, auth=AuthConfig(api_key=SERVER_KEY, admin_key=ADMIN_KEY))


ADAPTERS = ("ff", "wsgi")


@cache
def _wsgi_app(adapter: str) -> Any:
    if adapter == "ff":
        return functions_framework.create_app(target="all_routes", source=ff_targets.__file__)
    return make_wsgi_app()


class LiveServer:
    """``url`` answers with ``app`` through ``adapter``; ``get``/``post`` are requests calls relative to it."""

    def __init__(self, app: ApiApp, adapter: str = "ff") -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.app = app
        self.adapter = adapter
        PROCESS_APP.set(app)
        self._server = make_server("127.0.0.1", 0, _wsgi_app(adapter), threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.session = requests.Session()

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.post(self.url + path, timeout=30, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.url + path, timeout=30, **kwargs)

    def close(self) -> None:
        self.session.close()
        self._server.shutdown()
        self._server.server_close()
        PROCESS_APP.set(None)


@contextmanager
def live_server(app: ApiApp, adapter: str = "ff") -> Iterator[LiveServer]:
    server = LiveServer(app, adapter)
    try:
        yield server
    finally:
        server.close()


@contextmanager
def all_logs() -> Iterator[list[dict[str, Any]]]:
    """Every log event at any level, with the per-request context (correlation id...) merged in."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            yield logs
    finally:
        structlog.configure(**saved)


def event(**overrides: Any) -> dict[str, Any]:
    """A valid usage event as the game backend sends it."""
    body: dict[str, Any] = {
        "user_id": "player-1",
        "model": "gpt-4o",
        "provider": "openai",
        "task_type": "npc_dialogue",
        "tokens_input": 1000,
        "tokens_output": 500,
    }
    body.update(overrides)
    return body
