"""The embedded store: one SQLite file in WAL mode, safe for several threads and processes at once.

Rollups are updated in the same transaction as the event insert, from the events that insert really added
(a request id already stored is skipped by the insert itself), so they never drift from the events.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from typing import Literal

import structlog

from models.ai_usage import FREE_PRICE_RULES, AIUsageLog, EventPage, derived_fields, log_id_for
from models.counters import COUNTER_FIELDS, Counters, counter_values
from models.latency import LATENCY_COUNTERS, latency_bucket
from models.usage_kinds import COST_COUNTERS, COST_PARTS, KIND_NAMES
from services import deadlines
from services.errors import StoreError
from services.store.protocol import MAX_PAGE_SIZE, EventFilter, RollupRow
from services.store.rollups import RollupKind, rollup_keys
from services.store.sqlite_schema import EVENT_COLUMNS, PLAIN_COLUMNS, V1_EVENT_COLUMNS, add_events_to_rollups, migrate

# The idempotency key is log_id, derived from (tenant_id, request_id): a replay inserts nothing.
_INSERT_EVENT = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))}) "
    "ON CONFLICT (log_id) DO NOTHING"
)
_SELECT_EVENT = f"SELECT seq, {', '.join(EVENT_COLUMNS)} FROM events"
_COUNTERS = ", ".join(COUNTER_FIELDS)


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


def _ts_text(ts: datetime) -> str:
    # Fixed width, always UTC: text order is time order, so range filters work on the column directly.
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


# json.dumps builds a new encoder whenever it is given options; one reused encoder costs half as much.
_encode_json = json.JSONEncoder(separators=(",", ":")).encode


_plain_values = attrgetter(*PLAIN_COLUMNS)


_ZEROS = (0,) * len(COST_PARTS)


def _event_row(log: AIUsageLog) -> tuple[object, ...]:
    """The row's values in ``EVENT_COLUMNS`` order: the plain columns by name, then the converted ones."""
    metadata = _encode_json(log.metadata) if log.metadata else "{}"
    converted = (log.task_type.value, int(log.success), metadata, _ts_text(log.timestamp), int(log.price_is_fallback))
    return (*_plain_values(log), *converted, *map(log.cost_nano_by_kind.get, COST_PARTS, _ZEROS))


def _log_from_row(row: sqlite3.Row) -> AIUsageLog:
    fields = {name: row[name] for name in PLAIN_COLUMNS}
    return AIUsageLog(
        **fields,
        **derived_fields(fields["cost_nano"], fields["tokens_input"], fields["tokens_output"]),
        task_type=row["task_type"],
        success=bool(row["success"]),
        metadata=_metadata(row),
        timestamp=datetime.fromisoformat(row["ts"]),
        price_is_fallback=bool(row["price_is_fallback"]),
        cost_nano_by_kind={
            part: row[column] for part, column in zip(COST_PARTS, COST_COUNTERS, strict=True) if row[column]
        },
    )


def _metadata(row: sqlite3.Row) -> dict:
    try:
        return json.loads(row["metadata"])
    except RecursionError:  # stored by an older version before depth was capped: keep the row readable
        log.warning("store.metadata_unreadable", log_id=row["log_id"])
        return {"_unreadable_metadata": row["metadata"]}


def _counter_name(name: str) -> str:
    if name not in _COUNTER_SET:  # names go into SQL text: only the table's own counters
        raise ValueError(f"unknown counter {name!r}")
    return name


_COUNTER_SET = frozenset(COUNTER_FIELDS)


def _counters(row: sqlite3.Row) -> Counters:
    return Counters(*row[-len(COUNTER_FIELDS) :])


class SQLiteUsageStore:
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
            _private_files(Path(self.path))
            self._lock_file = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        self.schema_version = self._guard(lambda _deadline: migrate(self._conn()), writes=True)

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
            with _file_lock(self._lock_file, deadline):
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
        rows = [_event_row(log) for log in logs]
        if len(rows) == 1:
            return self._guard(lambda deadline: self._record_one(logs[0], rows[0], deadline), writes=True)
        return self._guard(lambda deadline: self._record_many(logs, rows, deadline), writes=True)

    def _record_one(self, log: AIUsageLog, row: tuple[object, ...], deadline: float) -> list[bool]:
        with self._write(deadline) as conn:
            stored = conn.execute(_INSERT_EVENT, row).rowcount == 1
            if stored:
                # One event: seven plain upserts beat seven GROUP BY statements (5,900 vs 4,800 events/s).
                values = counter_values(log)
                moved = tuple(i for i, value in enumerate(values) if value)
                sql = _upsert_rollup(tuple(COUNTER_FIELDS[i] for i in moved))
                added = tuple(values[i] for i in moved)
                conn.executemany(sql, [(k.scope, k.kind.value, k.bucket, k.dim, *added) for k in rollup_keys(log)])
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
                columns, counters, fresh_rows = _moved(fresh_rows)
                conn.executemany(_insert_event(columns), fresh_rows)
                add_events_to_rollups(conn, last_seq, counters)
            return stored

    def get_event(self, request_id: str, tenant_id: str | None = None) -> AIUsageLog | None:
        sql = f"{_SELECT_EVENT} WHERE log_id = ? AND request_id = ? AND tenant_id IS ?"
        params = (log_id_for(request_id, tenant_id), request_id, tenant_id)

        def read() -> AIUsageLog | None:
            row = self._conn().execute(sql, params).fetchone()
            return None if row is None else _log_from_row(row)

        return self._guard(read)

    def get_events(self, request_ids: Sequence[str], tenant_id: str | None = None) -> dict[str, AIUsageLog]:
        def read() -> dict[str, AIUsageLog]:
            found: dict[str, AIUsageLog] = {}
            ids = [log_id_for(request_id, tenant_id) for request_id in dict.fromkeys(request_ids)]
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start : start + _IN_CHUNK]
                sql = f"{_SELECT_EVENT} WHERE log_id IN ({','.join('?' * len(chunk))}) AND tenant_id IS ?"
                found.update(
                    (row["request_id"], _log_from_row(row)) for row in self._conn().execute(sql, (*chunk, tenant_id))
                )
            return found

        return self._guard(read)

    def get_rollups(self, kind: RollupKind, scope: str, bucket: str) -> dict[str, Counters]:
        sql = f"SELECT dim, {_COUNTERS} FROM rollups WHERE kind = ? AND scope = ? AND bucket = ?"
        return self._guard(
            lambda: {row["dim"]: _counters(row) for row in self._conn().execute(sql, (kind.value, scope, bucket))}
        )

    def get_rollup_kinds(
        self, kinds: Sequence[RollupKind], scope: str, bucket: str
    ) -> dict[RollupKind, dict[str, Counters]]:
        marks = ",".join("?" * len(kinds))
        sql = f"SELECT kind, dim, {_COUNTERS} FROM rollups WHERE scope = ? AND kind IN ({marks}) AND bucket = ?"
        params = (scope, *(kind.value for kind in kinds), bucket)

        def read() -> dict[RollupKind, dict[str, Counters]]:
            result: dict[RollupKind, dict[str, Counters]] = {kind: {} for kind in kinds}
            for row in self._conn().execute(sql, params):
                result[RollupKind(row["kind"])][row["dim"]] = _counters(row)
            return result

        return self._guard(read)

    def get_rollup_range(
        self, kind: RollupKind, scope: str, first_bucket: str, last_bucket: str
    ) -> dict[tuple[str, str], Counters]:
        sql = f"SELECT bucket, dim, {_COUNTERS} FROM rollups WHERE scope = ? AND kind = ? AND bucket BETWEEN ? AND ?"
        params = (scope, kind.value, first_bucket, last_bucket)
        return self._guard(
            lambda: {(row["bucket"], row["dim"]): _counters(row) for row in self._conn().execute(sql, params)}
        )

    def sum_rollups(
        self, kind: RollupKind, scope: str | None, first_bucket: str, last_bucket: str, counters: Sequence[str]
    ) -> dict[tuple[str, str, str], tuple[int, ...]]:
        names = ", ".join(_counter_name(name) for name in counters)
        where = "kind = ? AND bucket BETWEEN ? AND ?" + ("" if scope is None else " AND scope = ?")
        sql = f"SELECT scope, bucket, dim, {names} FROM rollups WHERE {where}"
        params = (kind.value, first_bucket, last_bucket, *(() if scope is None else (scope,)))
        return self._guard(
            lambda: {(row[0], row[1], row[2]): tuple(row[3:]) for row in self._conn().execute(sql, params)}
        )

    def top_rollups(self, kind: RollupKind, scope: str | None, bucket: str, limit: int) -> list[RollupRow]:
        # The kind is inlined (a member of the enum, not caller text) so the partial cost indexes apply.
        where = f"kind = '{kind.value}' AND bucket = ?" + ("" if scope is None else " AND scope = ?")
        sql = f"SELECT scope, dim, {_COUNTERS} FROM rollups WHERE {where} ORDER BY cost_nano DESC, scope, dim LIMIT ?"
        params = (bucket, *(() if scope is None else (scope,)), limit)
        return self._guard(
            lambda: [RollupRow(row[0], row[1], _counters(row)) for row in self._conn().execute(sql, params)]
        )

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
            params.append(_ts_text(where.start))
        if where.end is not None:
            clauses.append("ts < ?")
            params.append(_ts_text(where.end))
        sql = f"{_SELECT_EVENT} WHERE {' AND '.join(clauses)} ORDER BY seq LIMIT ?"
        params.append(limit + 1)

        def read() -> EventPage:
            rows = self._conn().execute(sql, params).fetchall()
            more = len(rows) > limit
            rows = rows[:limit]
            next_cursor = str(rows[-1]["seq"]) if more else None
            return EventPage(items=[_log_from_row(r) for r in rows], next_cursor=next_cursor)

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


# Event columns that are zero unless the event used that kind (or paid for it). When a whole batch leaves one at
# zero, its rollup counter is not summed, and (if the column has a default: all but version 1's) it is not written.
_USUALLY_ZERO = {name: EVENT_COLUMNS.index(name) for name in (*KIND_NAMES, *COST_COUNTERS)}
_NO_DEFAULT = frozenset(V1_EVENT_COLUMNS)
_AT = {
    name: EVENT_COLUMNS.index(name)
    for name in ("success", "price_is_fallback", "price_rule", "cost_nano", "request_duration_ms")
}
_FREE = frozenset(FREE_PRICE_RULES)


def _moved(rows: list[tuple[object, ...]]) -> tuple[tuple[str, ...], tuple[str, ...], list[tuple[object, ...]]]:
    """The event columns worth writing for these rows, the rollup counters they move, and the rows cut to them."""
    by_column = list(zip(*rows, strict=True))
    quiet = {name for name, at in _USUALLY_ZERO.items() if not any(by_column[at])}
    columns = tuple(name for name in EVENT_COLUMNS if name not in quiet or name in _NO_DEFAULT)
    rules = set(by_column[_AT["price_rule"]])
    durations = [ms for ms in by_column[_AT["request_duration_ms"]] if ms is not None]
    buckets = {latency_bucket(ms) for ms in durations}
    moves = {
        "timed_requests": bool(durations),
        "latency_ms_total": any(durations),
        **{name: index in buckets for index, name in enumerate(LATENCY_COUNTERS)},
        "failed_requests": not all(by_column[_AT["success"]]),
        "unpriced_requests": any(by_column[_AT["price_is_fallback"]]),
        "free_requests": bool(rules & _FREE),
        "other_host_requests": "other_host" in rules,
        "cost_nano": any(by_column[_AT["cost_nano"]]),
        "platform_credits": any(by_column[_AT["cost_nano"]]),
    }
    counters = tuple(name for name in COUNTER_FIELDS if name not in quiet and moves.get(name, True))
    if len(columns) < len(EVENT_COLUMNS):
        kept = [by_column[EVENT_COLUMNS.index(name)] for name in columns]
        rows = list(zip(*kept, strict=True))
    return columns, counters, rows


@functools.lru_cache(maxsize=256)
def _insert_event(columns: tuple[str, ...]) -> str:
    marks = ", ".join("?" * len(columns))
    return f"INSERT INTO events ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT (log_id) DO NOTHING"


def _private_files(db_path: Path) -> None:
    """The data directory 0700 when created here, the database 0600 (SQLite gives its -wal and -shm files the
    database's mode): usage data names players and what they did."""
    db_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(db_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        # An existing file made by an older version (or a looser umask) is tightened if it is ours.
        info = os.fstat(fd)
        if info.st_mode & 0o077 and info.st_uid == os.getuid():
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        sidecar = Path(f"{db_path}{suffix}")
        try:
            info = sidecar.lstat()
        except FileNotFoundError:
            continue
        if info.st_mode & 0o077 and info.st_uid == os.getuid() and not sidecar.is_symlink():
            sidecar.chmod(0o600)


@contextmanager
def _file_lock(fd: int | None, deadline: float) -> Iterator[None]:
    """Hold an exclusive flock on ``fd``, waiting until ``deadline`` (a stalled writer must not hang us)."""
    if fd is None:  # an in-memory store has one connection and no other process
        yield
        return
    pause = 0.0001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise sqlite3.OperationalError("database is locked (another process is writing)") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.002)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
