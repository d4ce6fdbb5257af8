"""Shared fixtures: the ``store`` fixture runs every contract test against every backend."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import structlog

from services.log_config import configure_logging
from services.pricing import PriceBook
from services.store.protocol import UsageStore
from services.store.sqlite_store import SQLiteUsageStore

configure_logging("console", "WARNING")

# Appwrite versions the local TablesDB server mirrors; the store must work on each (README, "Supported").
APPWRITE_VERSIONS = ("1.9.6", "1.8.1")
BACKENDS = [
    pytest.param("sqlite", marks=pytest.mark.sqlite),
    *(pytest.param(f"appwrite-{version}", marks=pytest.mark.appwrite) for version in APPWRITE_VERSIONS),
]


def open_backend(name: str, tmp_path: Path) -> Iterator[UsageStore]:
    if name == "sqlite":
        sqlite_store = SQLiteUsageStore(tmp_path / "usage.db")
        yield sqlite_store
        sqlite_store.close()
        return
    from tests.appwrite_support import make_appwrite_store
    from tests.tablesdb_double import TablesDBDouble

    version = name.removeprefix("appwrite-")
    double = TablesDBDouble(project_id="test-project", api_key="test-key", server_version=version)
    double.start()
    try:
        appwrite_store = make_appwrite_store(double)
        yield appwrite_store
        appwrite_store.close()
    finally:
        double.stop()


def ledger_on(name: str, tmp_path: Path, price_book: PriceBook, clock: Callable[[], datetime]) -> Iterator[Any]:
    """A ``UsageTrackingService`` on one backend with a fixed clock; closed (and its server stopped) afterwards."""
    from services.usage_tracking_service import UsageTrackingService

    backend = open_backend(name, tmp_path)
    yield UsageTrackingService(next(backend), price_book, clock=clock)
    next(backend, None)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UsageStore]:
    yield from open_backend(request.param, tmp_path)


@pytest.fixture(scope="session")
def price_book() -> PriceBook:
    """The shipped price book (loading it parses the TOML and checks every entry: once per run is enough)."""
    return PriceBook.load()


@pytest.fixture
def db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A database path the CLI reads from the environment; nothing from the developer's environment leaks in."""
    for name in list(os.environ):
        if name.startswith(("AI_USAGE_", "APPWRITE_")):
            monkeypatch.delenv(name)
    path = tmp_path / "usage.db"
    monkeypatch.setenv("AI_USAGE_DB_PATH", str(path))
    return path


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteUsageStore]:
    store = SQLiteUsageStore(tmp_path / "usage.db")
    yield store
    store.close()


@pytest.fixture
def captured_logs() -> Iterator[list[dict]]:
    """Every log event at any level, as dicts (the suite otherwise runs with WARNING and above)."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with structlog.testing.capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(**saved)
