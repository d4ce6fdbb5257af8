"""What only the embedded store has to prove: durability settings, migrations, several processes at once."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import sqlite3
import time
from pathlib import Path

import pytest

from services.errors import StoreError
from services.store import sqlite_schema
from services.store.protocol import EventFilter
from services.store.rollups import RollupKind, total_of
from services.store.sqlite_store import SQLiteUsageStore
from tests.factories import make_log


def test_wal_mode_and_synchronous_setting_are_applied(tmp_path: Path) -> None:
    normal = SQLiteUsageStore(tmp_path / "a.db")
    conn = normal._conn()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    full = SQLiteUsageStore(tmp_path / "b.db", synchronous="FULL")
    assert full._conn().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    normal.close()
    full.close()


def test_schema_version_is_recorded_and_reopening_keeps_the_data(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    store = SQLiteUsageStore(path)
    log = make_log()
    store.record([log])
    store.close()
    reopened = SQLiteUsageStore(path)
    assert reopened.schema_version == sqlite_schema.SCHEMA_VERSION
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == sqlite_schema.SCHEMA_VERSION
    assert reopened.get_event(log.request_id) == log
    reopened.close()


def test_a_database_from_newer_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    SQLiteUsageStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {sqlite_schema.SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this code"):
        SQLiteUsageStore(path)


def test_changed_rollup_definitions_rebuild_rollups_from_the_events(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    store = SQLiteUsageStore(path)
    logs = [make_log(cost_nano=5), make_log(cost_nano=7)]
    store.record(logs)
    store.close()
    with sqlite3.connect(path) as conn:  # simulate rollups written by an older definition
        conn.execute("UPDATE rollups SET cost_nano = 0")
        conn.execute("UPDATE meta SET value = 'old' WHERE key = 'rollup_shapes'")
    reopened = SQLiteUsageStore(path)
    assert total_of(reopened.get_rollups(RollupKind.USER_DAY, "player-1", "2026-11-23")).cost_nano == 12
    assert reopened.list_events(EventFilter(), limit=10).items == logs
    reopened.close()


def test_a_batch_is_all_or_nothing(sqlite_store: SQLiteUsageStore) -> None:
    good = make_log()
    # A NULL in a NOT NULL column fails inside the transaction after the first row went in.
    bad = make_log().model_copy(update={"model": None})
    with pytest.raises(StoreError):
        sqlite_store.record([good, bad])
    assert sqlite_store.get_event(good.request_id) is None
    assert sqlite_store.get_rollups(RollupKind.USER_DAY, "player-1", "2026-11-23") == {}


def _write_from_process(path: str, worker: int, count: int) -> None:
    store = SQLiteUsageStore(path, busy_timeout_ms=30_000)
    for i in range(count):
        log = make_log(request_id=f"w{worker}-{i}", user_id=f"p{i % 3}", cost_nano=3)
        store.record([log])
        store.record([log])  # the retry after a timeout
        if i % 10 == 0:
            store.record([make_log(request_id=f"w{worker}-{i}-b{j}", user_id="p0", cost_nano=3) for j in range(5)])
    store.close()


def test_several_processes_writing_at_once_lose_and_double_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "usage.db")
    SQLiteUsageStore(path).close()
    workers, count = 4, 60
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_from_process, args=(path, w, count)) for w in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
        assert proc.exitcode == 0
    store = SQLiteUsageStore(path)
    per_worker = count + 5 * len(range(0, count, 10))
    total = total_of(store.get_rollups(RollupKind.TENANT_DAY, "", "2026-11-23"))
    assert total.requests == workers * per_worker
    assert total.cost_nano == 3 * workers * per_worker
    users = sum(total_of(store.get_rollups(RollupKind.USER_DAY, f"p{u}", "2026-11-23")).requests for u in range(3))
    assert users == workers * per_worker
    store.close()


def test_a_writer_stalled_holding_the_lock_makes_others_fail_with_store_error_not_hang(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    store = SQLiteUsageStore(path, busy_timeout_ms=200)
    stalled = os.open(f"{path}.lock", os.O_RDWR)
    fcntl.flock(stalled, fcntl.LOCK_EX)  # as a writer in another process that stopped mid-write would
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match="locked"):
            store.record([make_log()])
        assert time.monotonic() - started < 10  # the busy timeout, a few retries, then a clear error
    finally:
        fcntl.flock(stalled, fcntl.LOCK_UN)
        os.close(stalled)
    assert store.record([make_log()]) == [True]
    store.close()
