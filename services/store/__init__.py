"""Stores behind one protocol, and the factory that picks one from the settings."""

from __future__ import annotations

from services.settings import Settings
from services.store.protocol import MAX_PAGE_SIZE, EventFilter, UsageStore

__all__ = ["MAX_PAGE_SIZE", "EventFilter", "UsageStore", "open_store"]


def open_store(settings: Settings, *, appwrite_key: str | None = None) -> UsageStore:
    """The Appwrite store when Appwrite is configured (or a function's per-execution key is given), else SQLite."""
    if settings.uses_appwrite or (appwrite_key and settings.appwrite_endpoint and settings.appwrite_project_id):
        from services.store.appwrite_store import AppwriteUsageStore

        return AppwriteUsageStore.from_settings(settings, api_key=appwrite_key)
    from services.store.sqlite_store import SQLiteUsageStore

    return SQLiteUsageStore(
        settings.db_path,
        synchronous=settings.sqlite_synchronous,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
    )
