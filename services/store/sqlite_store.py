"""The embedded store: one SQLite file in WAL mode, safe for several threads and processes at once.

Rollups are updated in the same transaction as the event insert, from the events that insert really added
(a request id already stored is skipped by the insert itself), so they never drift from the events.
"""

from __future__ import annotations

import functools
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Literal

import structlog

from models.ai_usage import AIUsageLog, EventPage, log_id_for
from models.counters import COUNTER_FIELDS, moved_counters
from services import deadlines
from services.errors import StoreError
from services.store.protocol import MAX_PAGE_SIZE, EventFilter
from services.store.rollups import HISTOGRAM_KINDS, RollupKey, kept_by, rollup_keys
from services.store.sqlite_files import file_lock, private_files
from services.store.sqlite_rollup_reads import SQLiteRollupReads
from services.store.sqlite_rollup_writes import add_events_to_rollups
from services.store.sqlite_rows import (
    event_row,
    insert_event,
    log_from_row,
    moved,
    ts_text,
)
from services.store.sqlite_schema import EVENT_COLUMNS, migrate

# The idempotency key is log_id, derived from (tenant_id, request_id): a replay inserts nothing.
_INSERT_EVENT = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))}) "
    "ON CONFLICT (log_id) DO NOTHING"
)
_SELECT_EVENT = f"SELECT seq, {', '.join(EVENT_COLUMNS)} FROM events"


@functools.lru_cache(maxsize=256)
def _upsert_rollup(counters: tuple[str, ...]) -> str:
    """The upsert that adds to these counters only: an event moves a handful of the ~45 counters, and a statement
    that names only those writes and updates a fraction of the columns (unnamed ones start at their default, 0)."""
    return (
        f"INSERT INTO rollups (scope, kind, bucket, dim, {', '.join(counters)}) "
        f"VALUES (?, ?, ?, ?, {', '.join('?' * len(counters))}) "
        "ON CONFLICT (scope, kind, bucket, dim) DO UPDATE SET "
        + ", ".join(f"{name} = {name} + excluded.{name}" for name in counters)
    )


log = structlog.get_logger("ai_usage.store")

# SQLite allows 32,766 host parameters; stay far below for IN lists.
_IN_CHUNK = 500
_BUSY_RETRIES = 5


class SQLiteUsageStore(SQLiteRollupReads):
    """``UsageStore`` on a SQLite file (or ``":memory:"`` for a single-connection throwaway store)."""

    def __init__(
        self,
        path: Path | str,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout_ms: int = 10_000,
    ) -> None:
        self.path = str(path)
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._memory = self.path == ":memory:"
        self._shared: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._connections: list[sqlite3.Connection] = []
        self._writer_lock = threading.Lock()
        self._lock_file: int | None = None
        if not self._memory:
            # Refuses a path that is not (and cannot become) our database before the lock file exists beside it.
            private_files(Path(self.path))
            self._lock_file = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self.schema_version = self._guard(lambda _deadline: migrate(self._conn()), writes=True)
        except BaseException:
            self.close()  # a store that failed to open is never closed by its caller: no lock fd or connection kept
            raise

    # -- connections -------------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0)
        conn.row_factory = sqlite3.Row
        # Opening runs statements that may wait for a lock too: within the caller's deadline, if it has one.
        left = deadlines.remaining()
        wait_ms = self._busy_timeout_ms if left is None else min(self._busy_timeout_ms, int(left * 1000))
        conn.execute(f"PRAGMA busy_timeout = {int(wait_ms)}")
        if not self._memory:
            conn.execute("PRAGMA journal_mode = WAL")
            # A checkpoint every 1,000 pages (the default) halved single-event logging throughput; every
            # 10,000 pages (40 MB of WAL) costs a little disk and nothing in durability.
            conn.execute("PRAGMA wal_autocheckpoint = 10000")
            conn.execute("PRAGMA journal_size_limit = 67108864")
        # 64 MB of page cache: past ~100K events the default 2 MB made every batch re-read index pages.
        conn.execute("PRAGMA cache_size = -65536")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        with self._lock:
            self._connections.append(conn)
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._memory:
            # An in-memory database exists per connection, so every thread shares one (under the lock).
            if self._shared is None:
                self._shared = self._open()
            return self._shared
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._open()
        return conn

    def _guard(self, action, *, writes: bool = False):  # type: ignore[no-untyped-def]
        """Run ``action`` within one deadline, retrying while another process holds the lock; wrap failures.

        The deadline is the busy timeout for a write, counted once from the first attempt (not per retry), and
        for any call the caller's ``deadlines.deadline`` when it is tighter (the rate limiter's count).
        Error messages name no file: the path goes to the log line only.
        """
        budget = self._busy_timeout_ms / 1000
        caller = deadlines.remaining()
        if caller is not None:
            budget = min(budget, caller)
        deadline = time.monotonic() + budget
        attempt = 0
        while True:
            try:
                with self._lock if self._memory else nullcontext():
                    if caller is None and attempt == 0:
                        # The connection's own busy timeout is the whole budget: no statement to adjust it
                        # on the logging hot path.
                        return action(deadline) if writes else action()
                    conn = self._conn()
                    conn.execute(f"PRAGMA busy_timeout = {max(0, int((deadline - time.monotonic()) * 1000))}")
                    try:
                        return action(deadline) if writes else action()
                    finally:
                        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                pause = random.uniform(0.005, 0.05) * (2**attempt)
                if busy and attempt < _BUSY_RETRIES and time.monotonic() + pause < deadline:
                    attempt += 1
                    time.sleep(pause)
                    continue
                raise self._failure("could not answer", exc) from exc
            except sqlite3.DatabaseError as exc:
                raise self._failure("failed", exc) from exc

    def _failure(self, what: str, exc: sqlite3.Error) -> StoreError:
        log.warning("store.sqlite_error", path=self.path, error=str(exc))
        return StoreError(f"the SQLite store {what}: {exc}")

    @contextmanager
    def _write(self, deadline: float) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        # Writers queue on a lock file first: SQLite's busy handler polls with sleeps of 1, 2, 5, 10… ms,
        # which made the p99 of concurrent writers (several server workers) 3x their median; this queue
        # polls every 0.1–2 ms. Threads of one process queue on the mutex, since flock does not exclude
        # threads sharing the file. Both waits end at the write's one deadline, like SQLite's own lock.
        if not self._writer_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise sqlite3.OperationalError("database is locked (another thread is writing)")
        try:
            with file_lock(self._lock_file, deadline):
                # IMMEDIATE takes the write lock up front, so the duplicate check and the insert see one state.
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        finally:
            self._writer_lock.release()

    # -- UsageStore ----------------------------------------------------------------------------------
    def record(self, logs: Sequence[AIUsageLog]) -> list[bool]:
        if not logs:
            return []
        rows = [event_row(log) for log in logs]
        if len(rows) == 1:
            return self._guard(lambda deadline: self._record_one(logs[0], rows[0], deadline), writes=True)
        return self._guard(lambda deadline: self._record_many(logs, rows, deadline), writes=True)

    def _record_one(self, log: AIUsageLog, row: tuple[object, ...], deadline: float) -> list[bool]:
        with self._write(deadline) as conn:
            stored = conn.execute(_INSERT_EVENT, row).rowcount == 1
            if stored:
                # One event: plain upserts beat GROUP BY statements (5,900 vs 4,800 events/s), one statement for
                # the rows with a histogram and one for the others (kinds alike in that keep the same counters).
                moved = moved_counters(log)
                groups: dict[bool, list[RollupKey]] = {}
                for key in rollup_keys(log):
                    groups.setdefault(key.kind in HISTOGRAM_KINDS, []).append(key)
                for keys in groups.values():
                    kept = kept_by(keys[0].kind, moved)
                    added = tuple(value for _, value in kept)
                    rows = [(k.scope, k.kind.value, k.bucket, k.dim, *added) for k in keys]
                    conn.executemany(_upsert_rollup(tuple(COUNTER_FIELDS[i] for i, _ in kept)), rows)
            return [stored]

    def _record_many(self, logs: Sequence[AIUsageLog], rows: list[tuple[object, ...]], deadline: float) -> list[bool]:
        with self._write(deadline) as conn:
            # Under the write lock nobody else inserts, so the fresh events are exactly those after this seq.
            last_seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
            ids = list({log.log_id for log in logs})
            existing: set[str] = set()
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start : start + _IN_CHUNK]
                marks = ",".join("?" * len(chunk))
                existing.update(
                    r[0] for r in conn.execute(f"SELECT log_id FROM events WHERE log_id IN ({marks})", chunk)
                )
            stored: list[bool] = []
            for log in logs:
                fresh = log.log_id not in existing
                existing.add(log.log_id)
                stored.append(fresh)
            fresh_rows = [row for row, fresh in zip(rows, stored, strict=True) if fresh]
            if fresh_rows:
                columns, counters, fresh_rows = moved(fresh_rows)
                conn.executemany(insert_event(columns), fresh_rows)
                add_events_to_rollups(conn, last_seq, counters)
            return stored

    def get_event(self, request_id: str, tenant_id: str | None = None) -> AIUsageLog | None:
        sql = f"{_SELECT_EVENT} WHERE log_id = ? AND request_id = ? AND tenant_id IS ?"
        params = (log_id_for(request_id, tenant_id), request_id, tenant_id)

        def read() -> AIUsageLog | None:
            row = self._conn().execute(sql, params).fetchone()
            return None if row is None else log_from_row(row)

        return self._guard(read)

    def get_events(self, request_ids: Sequence[str], tenant_id: str | None = None) -> dict[str, AIUsageLog]:
        def read() -> dict[str, AIUsageLog]:
            found: dict[str, AIUsageLog] = {}
            ids = [log_id_for(request_id, tenant_id) for request_id in dict.fromkeys(request_ids)]
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start : start + _IN_CHUNK]
                sql = f"{_SELECT_EVENT} WHERE log_id IN ({','.join('?' * len(chunk))}) AND tenant_id IS ?"
                found.update(
                    (row["request_id"], log_from_row(row)) for row in self._conn().execute(sql, (*chunk, tenant_id))
                )
            return found

        return self._guard(read)

    def list_events(self, where: EventFilter, limit: int = 100, cursor: str | None = None) -> EventPage:
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        clauses, params = ["seq > ?"], [_decode_cursor(cursor)]
        for column, value in (
            ("user_id", where.user_id),
            ("session_id", where.session_id),
            ("model", where.model),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if where.start is not None:
            clauses.append("ts >= ?")
            params.append(ts_text(where.start))
        if where.end is not None:
            clauses.append("ts < ?")
            params.append(ts_text(where.end))
        sql = f"{_SELECT_EVENT} WHERE {' AND '.join(clauses)} ORDER BY seq LIMIT ?"
        params.append(limit + 1)

        def read() -> EventPage:
            rows = self._conn().execute(sql, params).fetchall()
            more = len(rows) > limit
            rows = rows[:limit]
            next_cursor = str(rows[-1]["seq"]) if more else None
            return EventPage(items=[log_from_row(r) for r in rows], next_cursor=next_cursor)

        return self._guard(read)

    def ping(self) -> None:
        self._guard(lambda: self._conn().execute("SELECT 1").fetchone())

    def close(self) -> None:
        with self._lock:
            if self._lock_file is not None:
                os.close(self._lock_file)
                self._lock_file = None
            for conn in self._connections:
                conn.close()
            self._connections.clear()
            self._shared = None
        self._local = threading.local()


def _decode_cursor(cursor: str | None) -> int:
    if cursor is None or cursor == "":
        return 0
    if not cursor.isdigit():
        raise ValueError("cursor is not one this store returned")
    return int(cursor)
