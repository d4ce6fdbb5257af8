"""Rollup maintenance on the embedded store: the rows of removed kinds, the definition check, and the rebuild.

The rebuild is ``sqlite_rollup_writes.rebuild_rollups`` in one write transaction: readers keep seeing the old rollups
until it commits, and writers wait for it (a writer waiting longer than the busy timeout fails, so rebuild a
large ledger when it is quiet).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from services.store.rollups import SHAPES
from services.store.sqlite_rollup_writes import rebuild_rollups
from services.store.sqlite_schema import ROLLUPS_FINGERPRINT
from services.store.sqlite_store import SQLiteUsageStore

_KNOWN = ", ".join(f"'{kind.value}'" for kind in SHAPES)
_KEY = "scope, kind, bucket, dim"
_GONE = f"SELECT {_KEY} FROM rollups_before EXCEPT SELECT {_KEY} FROM main.rollups"


def stale_rows(store: SQLiteUsageStore) -> Iterator[tuple[str, str, str, str]]:
    """(kind, scope, bucket, dim) of every row of a kind the rollups no longer define."""
    sql = f"SELECT kind, scope, bucket, dim FROM rollups WHERE kind NOT IN ({_KNOWN}) ORDER BY kind, scope, bucket, dim"
    rows = store._guard(lambda: store._conn().execute(sql).fetchall())
    return iter([tuple(row) for row in rows])


def definition_current(store: SQLiteUsageStore) -> bool:
    sql = "SELECT value FROM meta WHERE key = 'rollup_shapes'"
    row = store._guard(lambda: store._conn().execute(sql).fetchone())
    return row is not None and row[0] == ROLLUPS_FINGERPRINT


def rebuild(store: SQLiteUsageStore) -> dict[str, Any]:
    """Recompute every rollup in one transaction; counts what changed against a copy taken inside it."""

    def run(deadline: float) -> dict[str, Any]:
        with store._write(deadline) as conn:
            conn.execute("CREATE TEMP TABLE rollups_before AS SELECT * FROM main.rollups")
            try:
                rebuild_rollups(conn)
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('rollup_shapes', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (ROLLUPS_FINGERPRINT,),
                )
                one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
                counts = {
                    "events": one("SELECT count(*) FROM events"),
                    "rows": one("SELECT count(*) FROM main.rollups"),
                    "rows_written": one(
                        "SELECT count(*) FROM (SELECT * FROM main.rollups EXCEPT SELECT * FROM rollups_before)"
                    ),
                    "rows_deleted": one(f"SELECT count(*) FROM ({_GONE})"),
                }
            finally:
                conn.execute("DROP TABLE temp.rollups_before")
        counts["rows_unchanged"] = counts["rows"] - counts["rows_written"]
        return counts

    return store._guard(run, writes=True)
