"""Stores behind one protocol, and the factory that picks one from the settings."""

from __future__ import annotations

from collections.abc import Iterator

from models.ai_usage import AIUsageLog
from services.settings import Settings
from services.store.protocol import MAX_PAGE_SIZE, EventFilter, UsageStore

__all__ = ["MAX_PAGE_SIZE", "EventFilter", "UsageStore", "iter_events", "open_store"]


def iter_events(store: UsageStore, where: EventFilter, page_size: int = MAX_PAGE_SIZE) -> Iterator[AIUsageLog]:
    """Every matching event, page by page, so reading any number of them runs in constant memory."""
    cursor: str | None = None
    while True:
        page = store.list_events(where, limit=page_size, cursor=cursor)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


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
