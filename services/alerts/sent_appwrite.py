"""The alert log on Appwrite: table ``alerts`` (declared in ``appwrite.json``), one row per sent alert.

The row id is a hash of (rule, scope, period), so a second process's create for the same alert is refused
with 409: that refusal is the claim. A create whose answer was lost may have been applied, so on 409 the row's
``claim_token`` tells whether the claim is ours. Taking over a claim past its lease (its sender died) is an
update sent with ``X-Appwrite-Timestamp`` set to the stale row's ``$updatedAt``: Appwrite applies it only if the
row has not changed since (409 ``row_update_conflict`` otherwise; appwrite-facts §2.2), so of two checks taking
over at the same instant exactly one wins.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from appwrite.exception import AppwriteException
from appwrite.query import Query
from appwrite.services.tables_db import TablesDB

from services.alerts.evaluate import Alert
from services.alerts.sent import (
    CLAIM_LEASE,
    HistoryPage,
    SentAlert,
    check_limit,
    iso,
    parse_iso,
    refused_cursor,
)
from services.store.appwrite_client import get_json
from services.store.appwrite_retry import RetryPolicy

ALERTS_TABLE = "alerts"
_EXISTS = frozenset({"row_already_exists", "document_already_exists"})
_MISSING = frozenset({"row_not_found", "document_not_found"})
DETAIL_CHARS = 4000


def alert_row_id(rule: str, scope: str, period: str) -> str:
    return "a" + hashlib.blake2b("\x1f".join((rule, scope, period)).encode(), digest_size=16).hexdigest()


class AppwriteAlertLog:
    def __init__(self, tables_db: TablesDB, database_id: str, *, retry: RetryPolicy | None = None) -> None:
        self.db = tables_db
        self.database_id = database_id
        self.retry = retry or RetryPolicy()
        self._tokens: dict[tuple[str, str, str], str] = {}

    def _path(self, row_id: str = "") -> str:
        return f"/tablesdb/{self.database_id}/tables/{ALERTS_TABLE}/rows" + (f"/{row_id}" if row_id else "")

    def _send(self, method: str, path: str, params: dict[str, Any], unchanged_since: str | None = None) -> Any:
        # Raw JSON, not the SDK's Row models: SDK 27 refuses the integer `$sequence` self-hosted 1.8 sends.
        client = self.db.client
        headers = {"X-Appwrite-Project": client.get_config("project"), "content-type": "application/json"}
        if unchanged_since is not None:  # applied only if the row's $updatedAt is not later than this
            headers["X-Appwrite-Timestamp"] = unchanged_since
        return client.call(method, path, headers, params)

    def _update(self, row_id: str, data: dict[str, Any], unchanged_since: str | None = None) -> bool:
        """Update the row; with ``unchanged_since`` only if nobody did since then (False when someone did: 409)."""

        def update() -> bool:
            try:
                self._send("patch", self._path(row_id), {"data": data}, unchanged_since)
                return True
            except AppwriteException as exc:
                if unchanged_since is not None and exc.code == 409 and exc.type == "row_update_conflict":
                    return False
                raise

        return self.retry.call("update an alert", update)

    def _get(self, row_id: str) -> dict[str, Any] | None:
        def read() -> dict[str, Any] | None:
            try:
                return get_json(self.db.client, self._path(row_id))
            except AppwriteException as exc:
                if exc.code == 404 and exc.type in _MISSING:
                    return None
                raise

        return self.retry.call("read an alert", read)

    def claim(self, alert: Alert, now: datetime) -> bool:
        row_id = alert_row_id(*alert.key)
        token = uuid.uuid4().hex
        detail = json.dumps({"kind": alert.kind.value, "summary": alert.summary, "fields": dict(alert.fields)})
        data = {
            "rule": alert.rule, "scope": alert.scope, "period": alert.period, "status": "claimed",
            "claim_token": token, "claimed_at": iso(now), "title": alert.title[:512],
            "detail": detail[:DETAIL_CHARS], "delivered": 0, "failed": 0,
        }  # fmt: skip

        def create() -> bool:
            try:
                self._send("post", self._path(), {"rowId": row_id, "data": data})
                return True
            except AppwriteException as exc:
                if exc.code == 409 and (exc.type in _EXISTS or not exc.type):
                    return False
                raise

        if self.retry.call("claim an alert", create):
            self._tokens[alert.key] = token
            return True
        row = self._get(row_id)
        if row is None:  # released between our create and our read: the next check claims it
            return False
        if row.get("claim_token") == token:  # our create was applied; its answer was lost and retried
            self._tokens[alert.key] = token
            return True
        stale = row.get("status") == "claimed" and (parse_iso(row.get("claimed_at")) or now) < now - CLAIM_LEASE
        if not stale:
            return False
        if not self._update(row_id, {"claim_token": token, "claimed_at": iso(now)}, row["$updatedAt"]):
            # Another check took it over first, or our own update was applied and its answer lost: the token says.
            again = self._get(row_id)
            if again is None or again.get("claim_token") != token:
                return False
        self._tokens[alert.key] = token
        return True

    def mark_sent(self, alert: Alert, now: datetime, delivered: int, failed: int) -> None:
        row_id = alert_row_id(*alert.key)
        self._tokens.pop(alert.key, None)
        data = {"status": "sent", "sent_at": iso(now), "delivered": delivered, "failed": failed}
        self._update(row_id, data)

    def release(self, alert: Alert) -> None:
        row_id = alert_row_id(*alert.key)
        token = self._tokens.pop(alert.key, None)
        row = self._get(row_id)
        if row is None or row.get("claim_token") != token or row.get("status") != "claimed":
            return  # someone else's claim by now: leave it

        def delete() -> None:
            try:
                self._send("delete", self._path(row_id), {})
            except AppwriteException as exc:
                if not (exc.code == 404 and exc.type in _MISSING):
                    raise

        self.retry.call("release an alert", delete)

    def status(self, alert: Alert) -> str | None:
        row = self._get(alert_row_id(*alert.key))
        return None if row is None else str(row.get("status"))

    def history(self, limit: int = 50, cursor: str | None = None) -> HistoryPage:
        check_limit(limit)
        if cursor is not None and not (cursor.isascii() and cursor.isalnum() and len(cursor) <= 36):
            raise refused_cursor()
        queries = [Query.order_desc("claimed_at"), Query.limit(limit + 1)]
        if cursor:
            queries.append(Query.cursor_after(cursor))

        def read() -> list[dict[str, Any]]:
            try:
                return get_json(self.db.client, self._path(), {"queries": queries, "total": False})["rows"]
            except AppwriteException as exc:
                if exc.type == "general_cursor_not_found":
                    raise refused_cursor() from None
                raise

        rows = self.retry.call("list alerts", read)
        alerts = [
            SentAlert(
                rule=r["rule"],
                scope=r["scope"],
                period=r["period"],
                status=r["status"],
                claimed_at=parse_iso(r["claimed_at"]),
                sent_at=parse_iso(r.get("sent_at")),  # type: ignore[arg-type]
                title=r["title"],
                delivered=r.get("delivered") or 0,
                failed=r.get("failed") or 0,
            )
            for r in rows[:limit]
        ]
        return HistoryPage(alerts, rows[limit - 1]["$id"] if len(rows) > limit else None)

    def close(self) -> None:
        pass
