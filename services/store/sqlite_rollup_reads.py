"""The rollup half of ``UsageStore`` for ``SQLiteUsageStore``: one SQL statement per read, each a range of the rollups'
primary key (scope, kind, bucket, dim) or of an index named for it (as ``appwrite_rollup_reads`` is for Appwrite)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from models.counters import COUNTER_FIELDS, Counters
from services.store.protocol import RollupRow
from services.store.rollups import RollupKind
from services.store.sqlite_rows import counter_name, counters_of

_COUNTERS = ", ".join(COUNTER_FIELDS)


class SQLiteRollupReads:
    """Reads the rollups; ``SQLiteUsageStore`` provides the connection and the guard (deadline, retries, errors)."""

    _conn: Callable[[], sqlite3.Connection]
    _guard: Callable[..., Any]

    def get_rollups(self, kind: RollupKind, scope: str, bucket: str) -> dict[str, Counters]:
        sql = f"SELECT dim, {_COUNTERS} FROM rollups WHERE kind = ? AND scope = ? AND bucket = ?"
        return self._guard(
            lambda: {row["dim"]: counters_of(row) for row in self._conn().execute(sql, (kind.value, scope, bucket))}
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
                result[RollupKind(row["kind"])][row["dim"]] = counters_of(row)
            return result

        return self._guard(read)

    def get_rollup_range(
        self, kind: RollupKind, scope: str, first_bucket: str, last_bucket: str
    ) -> dict[tuple[str, str], Counters]:
        sql = f"SELECT bucket, dim, {_COUNTERS} FROM rollups WHERE scope = ? AND kind = ? AND bucket BETWEEN ? AND ?"
        params = (scope, kind.value, first_bucket, last_bucket)
        return self._guard(
            lambda: {(row["bucket"], row["dim"]): counters_of(row) for row in self._conn().execute(sql, params)}
        )

    def sum_rollups(
        self,
        kind: RollupKind,
        scope: str | None,
        first_bucket: str,
        last_bucket: str,
        counters: Sequence[str],
        *,
        by_bucket: bool = True,
        by_dim: bool = True,
    ) -> dict[tuple[str, str, str], tuple[int, ...]]:
        where = "kind = ? AND bucket BETWEEN ? AND ?"
        params: tuple[str, ...] = (kind.value, first_bucket, last_bucket)
        if scope is None:
            # Every tenant's rows, read along the primary key one scope at a time (the scopes found in the covering
            # (kind, bucket) index): reading them through that index costs a primary-key search per row, 1.5-2x.
            where = f"scope IN (SELECT DISTINCT scope FROM rollups WHERE {where}) AND {where}"
            params = params * 2
        else:
            where += " AND scope = ?"
            params = (*params, scope)
        bucket, dim = ("bucket" if by_bucket else "''"), ("dim" if by_dim else "''")
        if by_bucket and by_dim:
            names = ", ".join(counter_name(name) for name in counters)
            sql = f"SELECT scope, bucket, dim, {names} FROM rollups WHERE {where}"
        else:  # summed here: SQLite adds a row's counters far faster than Python regroups the rows
            names = ", ".join(f"SUM({counter_name(name)})" for name in counters)
            sql = f"SELECT scope, {bucket}, {dim}, {names} FROM rollups WHERE {where} GROUP BY 1, 2, 3"
        return self._guard(
            lambda: {(row[0], row[1], row[2]): tuple(row[3:]) for row in self._conn().execute(sql, params)}
        )

    def top_rollups(self, kind: RollupKind, scope: str | None, bucket: str, limit: int) -> list[RollupRow]:
        # The kind is inlined (a member of the enum, not caller text) so the partial cost indexes apply.
        where = f"kind = '{kind.value}' AND bucket = ?" + ("" if scope is None else " AND scope = ?")
        # Named: without statistics SQLite takes (kind, bucket) for one tenant's players and sorts all of them.
        index = ""
        if kind is RollupKind.PLAYER_DAY:
            index = "INDEXED BY rollups_top_players" if scope is None else "INDEXED BY rollups_top_tenant_players"
        sql = (
            f"SELECT scope, dim, {_COUNTERS} FROM rollups {index} WHERE {where} "
            "ORDER BY cost_nano DESC, scope, dim LIMIT ?"
        )
        params = (bucket, *(() if scope is None else (scope,)), limit)
        return self._guard(
            lambda: [RollupRow(row[0], row[1], counters_of(row)) for row in self._conn().execute(sql, params)]
        )
