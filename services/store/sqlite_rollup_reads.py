"""The rollup half of ``UsageStore`` for ``SQLiteUsageStore``: one SQL statement per read, each a range of the rollups'
primary key (scope, kind, bucket, dim) or of an index named for it (as ``appwrite_rollup_reads`` is for Appwrite)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from models.counters import COUNTER_FIELDS, Counters
from services.store.protocol import RollupRow
from services.store.rollups import SHAPES, RollupKind
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
        # The kind as a literal (a member of the enum, not caller text), so its partial bucket index applies.
        where = f"kind = '{kind.value}' AND bucket BETWEEN ? AND ?"
        params: tuple[str, ...] = (first_bucket, last_bucket)
        if scope is None:
            # Every tenant's rows, read along the primary key one scope at a time (the scopes found in the kind's
            # bucket index): reading them through that index costs a primary-key search per row, 1.5-2x.
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
        if scope is not None:
            return self._guard(lambda: self._top_of_scope(kind, scope, bucket, limit))
        # Each tenant's first entries of its own cost index, merged: one index over every tenant's players cost
        # every logged event one more page. A day's tenants are read off their own day rows (a few dozen each).
        source = RollupKind.TENANT_DAY if SHAPES[kind].bucket == "day" else kind
        tenants = f"SELECT DISTINCT scope FROM rollups WHERE kind = '{source.value}' AND bucket = ?"

        def read() -> list[RollupRow]:
            scopes = [row[0] for row in self._conn().execute(tenants, (bucket,))]
            rows = [row for each in scopes for row in self._top_of_scope(kind, each, bucket, limit)]
            return sorted(rows, key=lambda row: (-row.counters.cost_nano, row.scope, row.dim))[:limit]

        return self._guard(read)

    def _top_of_scope(self, kind: RollupKind, scope: str, bucket: str, limit: int) -> list[RollupRow]:
        # The kind is inlined so the partial cost index applies; named, since without statistics SQLite takes the
        # bucket index for one tenant's players and sorts all of them.
        index = "INDEXED BY rollups_top_tenant_players" if kind is RollupKind.PLAYER_DAY else ""
        sql = (
            f"SELECT scope, dim, {_COUNTERS} FROM rollups {index} WHERE kind = '{kind.value}' AND bucket = ? "
            "AND scope = ? ORDER BY cost_nano DESC, dim LIMIT ?"
        )
        rows = self._conn().execute(sql, (bucket, scope, limit))
        return [RollupRow(row[0], row[1], counters_of(row)) for row in rows]
