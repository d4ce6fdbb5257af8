"""Which alerts were sent: claimed before sending, so one (rule, scope, period) goes out once across processes.

A check claims an alert (an insert that only one process can win: a UNIQUE key on SQLite, a row id derived from
the key on Appwrite), sends it, then marks it sent, or releases the claim when every webhook failed so a later
check tries again. A claim left by a process that died mid-send is taken over after ``CLAIM_LEASE``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog

from services.alerts.evaluate import Alert
from services.errors import StoreError
from services.store import UsageStore

log = structlog.get_logger("ai_usage.alerts")

CLAIM_LEASE = timedelta(minutes=10)  # longer than any send: attempts × timeout + backoff stay under a minute
MAX_HISTORY = 1000


@dataclass(frozen=True)
class SentAlert:
    rule: str
    scope: str
    period: str
    status: str  # "sent" or "claimed" (being sent, or its sender died)
    claimed_at: datetime
    sent_at: datetime | None
    title: str
    delivered: int
    failed: int


@dataclass(frozen=True)
class HistoryPage:
    alerts: list[SentAlert]
    next_cursor: str | None


class AlertLog(Protocol):
    def claim(self, alert: Alert, now: datetime) -> bool:
        """True when this caller may send the alert (nobody sent or is sending it); False otherwise."""
        ...

    def mark_sent(self, alert: Alert, now: datetime, delivered: int, failed: int) -> None: ...

    def release(self, alert: Alert) -> None:
        """Give a claim up (every webhook failed): a later check sends the alert again."""
        ...

    def status(self, alert: Alert) -> str | None:
        """ "sent", "claimed" or None: what a dry run reports without claiming anything."""
        ...

    def history(self, limit: int = 50, cursor: str | None = None) -> HistoryPage:
        """The most recently claimed alerts first; ``ValidationFailed`` for a cursor no page returned."""
        ...

    def close(self) -> None: ...


def iso(at: datetime) -> str:
    # Fixed width, so text order is time order (the lease comparison relies on it).
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_iso(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def check_limit(limit: int) -> None:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_HISTORY:
        raise _invalid("limit", f"must be an integer from 1 to {MAX_HISTORY}")


def refused_cursor() -> Exception:
    return _invalid("cursor", "not one a previous page returned")


def _invalid(field: str, message: str) -> Exception:
    from models.ai_usage import FieldError
    from services.errors import ValidationFailed

    return ValidationFailed([FieldError(field=field, message=message)])


_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts_sent (
    rule TEXT NOT NULL,
    scope TEXT NOT NULL,
    period TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('claimed', 'sent')),
    claim_token TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    sent_at TEXT,
    title TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}',
    delivered INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    UNIQUE (rule, scope, period)
);
CREATE INDEX IF NOT EXISTS alerts_sent_claimed_at ON alerts_sent (claimed_at DESC);
"""


class SQLiteAlertLog:
    """``alerts_sent`` in the ledger's SQLite file, through a connection of its own."""

    def __init__(self, path: str, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = path
        self._tokens: dict[tuple[str, str, str], str] = {}
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
            )
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc

    def _failure(self, exc: sqlite3.Error) -> StoreError:
        log.warning("alerts.sqlite_error", path=self.path, error=str(exc))
        return StoreError(f"the SQLite store could not record alerts: {exc}")

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        try:
            with self._lock:
                return self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc

    def claim(self, alert: Alert, now: datetime) -> bool:
        token = uuid.uuid4().hex
        detail = json.dumps({"kind": alert.kind.value, "summary": alert.summary, "fields": dict(alert.fields)})
        # One statement: a fresh key is inserted; an existing one is taken over only when it is a claim past its
        # lease. Either way SQLite's write lock makes exactly one process see a changed row.
        cursor = self._run(
            "INSERT INTO alerts_sent (rule, scope, period, status, claim_token, claimed_at, title, detail) "
            "VALUES (?, ?, ?, 'claimed', ?, ?, ?, ?) ON CONFLICT (rule, scope, period) DO UPDATE SET "
            "claim_token = excluded.claim_token, claimed_at = excluded.claimed_at "
            "WHERE alerts_sent.status = 'claimed' AND alerts_sent.claimed_at < ?",
            (*alert.key, token, iso(now), alert.title, detail, iso(now - CLAIM_LEASE)),
        )
        if cursor.rowcount == 1:
            self._tokens[alert.key] = token
            return True
        return False

    def mark_sent(self, alert: Alert, now: datetime, delivered: int, failed: int) -> None:
        self._run(
            "UPDATE alerts_sent SET status = 'sent', sent_at = ?, delivered = ?, failed = ? "
            "WHERE rule = ? AND scope = ? AND period = ? AND claim_token = ?",
            (iso(now), delivered, failed, *alert.key, self._tokens.pop(alert.key, "")),
        )

    def release(self, alert: Alert) -> None:
        self._run(
            "DELETE FROM alerts_sent WHERE rule = ? AND scope = ? AND period = ? AND status = 'claimed' "
            "AND claim_token = ?",
            (*alert.key, self._tokens.pop(alert.key, "")),
        )

    def status(self, alert: Alert) -> str | None:
        row = self._run(
            "SELECT status FROM alerts_sent WHERE rule = ? AND scope = ? AND period = ?", alert.key
        ).fetchone()
        return None if row is None else row[0]

    def history(self, limit: int = 50, cursor: str | None = None) -> HistoryPage:
        check_limit(limit)
        # The cursor is the offset a previous page returned; anything else is refused, never read as page one.
        if cursor is not None and not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 12):
            raise refused_cursor()
        offset = int(cursor) if cursor else 0
        rows = self._run(
            "SELECT rule, scope, period, status, claimed_at, sent_at, title, delivered, failed FROM alerts_sent "
            "ORDER BY claimed_at DESC, rule, scope, period LIMIT ? OFFSET ?",
            (limit + 1, offset),
        ).fetchall()
        alerts = [
            SentAlert(r[0], r[1], r[2], r[3], parse_iso(r[4]), parse_iso(r[5]), r[6], r[7], r[8])  # type: ignore[arg-type]
            for r in rows[:limit]
        ]
        return HistoryPage(alerts, str(offset + limit) if len(rows) > limit else None)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def open_alert_log(store: UsageStore) -> AlertLog:
    """The alert log kept in the same store as the ledger: SQLite's file or Appwrite's database."""
    from services.store.sqlite_store import SQLiteUsageStore

    if isinstance(store, SQLiteUsageStore):
        return SQLiteAlertLog(store.path)
    from services.store.appwrite_store import AppwriteUsageStore

    if isinstance(store, AppwriteUsageStore):
        from services.alerts.sent_appwrite import AppwriteAlertLog

        return AppwriteAlertLog(store.db, store.database_id, retry=store.retry)
    raise TypeError(f"no alert log for a {type(store).__name__}; pass alert_log explicitly")
