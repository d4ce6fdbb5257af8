"""The event half of the Appwrite store's reads (``AppwriteUsageStore``): an event by its key, events by ids, a
filtered page of events, and the paged row listing every Appwrite read goes through (``_list``)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

from appwrite.exception import AppwriteException
from appwrite.query import Query
from appwrite.services.tables_db import TablesDB

from models.ai_usage import MAX_ID_CHARS, MAX_MODEL_CHARS, AIUsageLog, EventPage
from services.store.appwrite_client import get_json
from services.store.appwrite_retry import RetryPolicy
from services.store.appwrite_rollup_reads import PAGE, storable
from services.store.appwrite_rows import event_row_id, iso_ms_ceil, log_from_data
from services.store.protocol import MAX_PAGE_SIZE, EventFilter

EVENTS_TABLE = "events"
# $id values per `equal` query: each costs 35 characters and a query string may hold 4,096 (appwrite-facts §3.2).
IDS_PER_QUERY = 100


class EventReads:
    """Reads of the events table; ``AppwriteUsageStore`` provides the client, the retry policy and the cache of
    events it met while spotting duplicates."""

    db: TablesDB
    database_id: str
    retry: RetryPolicy
    _recent_events: OrderedDict[str, dict[str, Any]]
    _recent_lock: threading.Lock

    # Rows are read as the server's JSON, not through the SDK's Row models: SDK 27 requires `$sequence` to be
    # a string, which self-hosted 1.8 sends as an integer (server 1.8.1, Response/Model/Row.php), and the
    # columns are all this store reads.
    def _list_rows(self, table: str, queries: list[str]) -> list[dict[str, Any]]:
        path = f"/tablesdb/{self.database_id}/tables/{table}/rows"
        return get_json(self.db.client, path, {"queries": queries, "total": False})["rows"]

    def _get_row(self, table: str, row_id: str) -> dict[str, Any]:
        return get_json(self.db.client, f"/tablesdb/{self.database_id}/tables/{table}/rows/{row_id}")

    def _list(self, table: str, queries: list[str], what: str, limit: int = PAGE) -> Iterator[dict[str, Any]]:
        """Every matching row, ``limit`` to a request, following the cursor (never ``total``)."""
        cursor = None
        while True:
            page_queries = [*queries, Query.limit(limit)]
            if cursor is not None:
                page_queries.append(Query.cursor_after(cursor))
            rows = self.retry.call(what, lambda q=page_queries: self._list_rows(table, q))
            yield from rows
            if len(rows) < limit:
                return
            cursor = rows[-1]["$id"]

    def _get_event_data(self, row_id: str) -> dict[str, Any] | None:
        def read() -> dict[str, Any] | None:
            try:
                return self._get_row(EVENTS_TABLE, row_id)
            except AppwriteException as exc:
                if exc.code == 404 and exc.type in ("row_not_found", "document_not_found"):
                    return None
                raise

        return self.retry.call("read an event", read)

    def get_event(self, request_id: str, tenant_id: str | None = None) -> AIUsageLog | None:
        row_id = event_row_id(request_id, tenant_id)
        with self._recent_lock:
            data = self._recent_events.get(row_id)
        if data is None:
            data = self._get_event_data(row_id)
        # Ids compare case-insensitively on Appwrite's MariaDB; the stored key must match exactly.
        if data is None or data["request_id"] != request_id or data.get("tenant_id") != tenant_id:
            return None
        return log_from_data(data)

    def get_events(self, request_ids: Sequence[str], tenant_id: str | None = None) -> dict[str, AIUsageLog]:
        wanted = set(request_ids)
        found = {}
        for row in self._rows_by_id([event_row_id(request_id, tenant_id) for request_id in wanted], []):
            if row["request_id"] in wanted and row.get("tenant_id") == tenant_id:
                found[row["request_id"]] = log_from_data(row)
        return found

    def list_events(self, where: EventFilter, limit: int = 100, cursor: str | None = None) -> EventPage:
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        if cursor is not None and not (cursor.isalnum() and cursor.isascii() and len(cursor) <= 36):
            raise ValueError("cursor is not one this store returned")
        exact = {"user_id": where.user_id, "session_id": where.session_id, "model": where.model}
        exact = {name: value for name, value in exact.items() if value is not None}
        if not all(storable(v, MAX_MODEL_CHARS if n == "model" else MAX_ID_CHARS) for n, v in exact.items()):
            return EventPage(items=[])
        queries = [Query.equal(name, [value]) for name, value in exact.items()]
        if where.start is not None:
            queries.append(Query.greater_than_equal("timestamp", iso_ms_ceil(where.start)))
        if where.end is not None:
            queries.append(Query.less_than("timestamp", iso_ms_ceil(where.end)))
        queries.append(Query.limit(limit + 1))
        if cursor:
            queries.append(Query.cursor_after(cursor))

        def read() -> list[dict[str, Any]]:
            try:
                return self._list_rows(EVENTS_TABLE, queries)
            except AppwriteException as exc:
                if exc.type == "general_cursor_not_found":
                    raise ValueError("cursor is not one this store returned") from exc
                raise

        rows = self.retry.call("list events", read)
        page, more = rows[:limit], len(rows) > limit
        items = [log_from_data(row) for row in page if all(row.get(name) == value for name, value in exact.items())]
        return EventPage(items=items, next_cursor=page[-1]["$id"] if more else None)

    def _rows_by_id(self, row_ids: Sequence[str], extra: list[str]) -> Iterator[dict[str, Any]]:
        unique = list(dict.fromkeys(row_ids))
        for start in range(0, len(unique), IDS_PER_QUERY):
            queries = [Query.equal("$id", unique[start : start + IDS_PER_QUERY]), *extra]
            yield from self._list(EVENTS_TABLE, queries, "look up events")
