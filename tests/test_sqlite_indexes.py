"""The SQLite rollups' indexes: what each logged event pays for, and that reads over every tenant still use one.

Each index entry an event moves is another page in its commit, so the store keeps only indexes a read needs:
one partial bucket index per kind with a time bucket (the other kinds are never read by bucket) and the cost
index within a tenant (the top players over every tenant merge each tenant's).
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from services.store.rollups import SHAPES, RollupKind
from services.store.sqlite_schema import MIGRATIONS, SCHEMA_VERSION, bucket_index
from services.store.sqlite_store import SQLiteUsageStore
from tests.factories import BASE_TIME, make_log

BUCKETED = [kind for kind, shape in SHAPES.items() if shape.bucket is not None]


def _rollup_indexes(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'rollups'")
        return {name: sql for name, sql in rows if sql is not None}  # not the primary key's own


def _version_4_database(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    for migration in MIGRATIONS[:4]:
        migration(conn)
    conn.execute("PRAGMA user_version = 4")
    conn.execute("COMMIT")
    conn.close()


@pytest.mark.parametrize("start", ["new", "version 4"])
def test_each_kind_with_a_time_bucket_has_its_own_partial_index_and_no_other_kind_pays_for_one(
    tmp_path: Path, start: str
) -> None:
    path = tmp_path / "usage.db"
    if start == "version 4":
        _version_4_database(path)
        assert {"rollups_kind_bucket", "rollups_top_players"} <= _rollup_indexes(path).keys()
    SQLiteUsageStore(path).close()
    indexes = _rollup_indexes(path)
    assert set(indexes) == {bucket_index(kind) for kind in BUCKETED} | {"rollups_top_tenant_players"}
    for kind in BUCKETED:
        assert indexes[bucket_index(kind)].endswith(f"WHERE kind = '{kind.value}'")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    SQLiteUsageStore(path).close()  # opening again changes nothing
    assert _rollup_indexes(path) == indexes


def test_a_kind_that_leaves_the_shapes_loses_its_index_and_a_new_one_gains_one(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    SQLiteUsageStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"DROP INDEX {bucket_index(RollupKind.TENANT_HOUR)}")
        conn.execute("CREATE INDEX rollups_bucket_tenant_week ON rollups (bucket) WHERE kind = 'tenant_week'")
    SQLiteUsageStore(path).close()
    assert set(_rollup_indexes(path)) == {bucket_index(kind) for kind in BUCKETED} | {"rollups_top_tenant_players"}


def test_reads_over_every_tenant_search_an_index_and_never_scan_the_rollups(tmp_path: Path) -> None:
    store = SQLiteUsageStore(tmp_path / "usage.db")
    logs = [
        make_log(user_id=f"p{n % 5}", tenant_id=(None, "studio-a", "studio-b")[n % 3], session_id=f"s{n % 4}",
                 cost_nano=1000 * (n + 1), timestamp=BASE_TIME - timedelta(hours=n), request_duration_ms=100 + n)
        for n in range(30)
    ]  # fmt: skip
    store.record(logs)
    statements: list[str] = []
    conn = store._conn()
    conn.set_trace_callback(statements.append)
    day, hour = BASE_TIME.date().isoformat(), BASE_TIME.strftime("%Y%m%d%H")
    for kind in BUCKETED:
        first, last = (hour, hour) if SHAPES[kind].bucket == "hour" else (day, day)
        store.sum_rollups(kind, None, first, last, ("requests", "cost_nano"))
        store.sum_rollups(kind, None, first, last, ("requests",), by_bucket=False, by_dim=False)
    top = store.top_rollups(RollupKind.PLAYER_DAY, None, day, 3)
    conn.set_trace_callback(None)

    plans = {sql: [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")] for sql in statements}
    assert len(plans) >= 2 * len(BUCKETED) + 2
    for sql, plan in plans.items():
        assert not [step for step in plan if step.startswith("SCAN rollups")], (sql, plan)
        if "DISTINCT scope" in sql:
            assert any(bucket_index(RollupKind(sql.split("kind = '")[1].split("'")[0])) in s for s in plan), plan
    # The merge of each tenant's first entries is the top over every tenant.
    by_player: dict[tuple[str, str], int] = {}
    for log in logs:
        if log.timestamp.date() == BASE_TIME.date():
            key = (log.tenant_id or "", log.user_id)
            by_player[key] = by_player.get(key, 0) + log.cost_nano
    expected = sorted(by_player.items(), key=lambda item: (-item[1], item[0]))[:3]
    assert [((row.scope, row.dim), row.counters.cost_nano) for row in top] == expected
    store.close()
