"""The Appwrite store's rollup reads: a summary's rows in one request, ranges summed over shards and buckets, and
the top rows of a day by cost. Rows are read as the server's JSON (see ``appwrite_event_reads.EventReads._list``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from operator import add
from typing import Any

from appwrite.query import Query

from models.ai_usage import MAX_ID_CHARS
from models.counters import COUNTER_FIELDS, Counters
from services.store.appwrite_rows import SCOPE_CHARS, counters_from_data, key_column, rollup_key_of
from services.store.protocol import RollupRow
from services.store.rollups import RollupKind

ROLLUPS_TABLE = "rollups"
PAGE = 5000  # rows per list request: Appwrite Cloud's practical ceiling (appwrite-facts §3.2)
_ROLLUP_COLUMNS = ["kind", "scope", "bucket", "dim", "long_key", *COUNTER_FIELDS]
_IDS_PER_QUERY = 100  # each `$id` costs 35 of a query's 4,096 characters (appwrite-facts §3.2)
# The longest rollup scope: a tenant's player or session (tenant, separator, id); stored hashed past 128.
MAX_SCOPE_CHARS = 2 * MAX_ID_CHARS + 1


def storable(value: str, limit: int) -> bool:
    # Values past the ingest limits were never stored, and a query for one could pass Appwrite's 4,096
    # characters per query (non-ASCII text is escaped six to a character), which would answer 400.
    return len(value) <= limit


class RollupReads:
    """The rollup half of ``UsageStore`` for ``AppwriteUsageStore``; ``EventReads`` provides ``_list``."""

    def _list(self, table: str, queries: list[str], what: str, limit: int = PAGE) -> Iterator[dict[str, Any]]:
        raise NotImplementedError

    def get_rollups(self, kind: RollupKind, scope: str, bucket: str) -> dict[str, Counters]:
        return self.get_rollup_kinds([kind], scope, bucket)[kind]

    def get_rollup_kinds(
        self, kinds: Sequence[RollupKind], scope: str, bucket: str
    ) -> dict[RollupKind, dict[str, Counters]]:
        """Several kinds of one (scope, bucket) in one request: a whole summary costs one round trip."""
        if not storable(scope, MAX_SCOPE_CHARS):  # nothing longer was ever stored; and the query would overflow
            return {kind: {} for kind in kinds}
        queries = [
            Query.equal("kind", [kind.value for kind in kinds]),
            Query.equal("scope", [key_column(scope, SCOPE_CHARS)]),
            Query.equal("bucket", [bucket]),
            Query.select(_ROLLUP_COLUMNS),
        ]
        result: dict[RollupKind, dict[str, Counters]] = {kind: {} for kind in kinds}
        for data in self._list(ROLLUPS_TABLE, queries, "read rollups"):
            row_scope, dim = rollup_key_of(data)
            # String equality is case- and accent-insensitive on Appwrite's MariaDB: keep exact matches only.
            if row_scope != scope or data["bucket"] != bucket or data["kind"] not in result:
                continue
            by_dim = result[RollupKind(data["kind"])]
            by_dim[dim] = by_dim.get(dim, Counters()) + counters_from_data(data)
        return result

    def get_rollup_range(
        self, kind: RollupKind, scope: str, first_bucket: str, last_bucket: str
    ) -> dict[tuple[str, str], Counters]:
        if not storable(scope, MAX_SCOPE_CHARS):
            return {}
        result: dict[tuple[str, str], Counters] = {}
        for (_, bucket, dim), values in self.sum_rollups(
            kind, scope, first_bucket, last_bucket, COUNTER_FIELDS
        ).items():
            result[(bucket, dim)] = Counters(*values)
        return result

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
        if scope is not None and not storable(scope, MAX_SCOPE_CHARS):
            return {}
        unknown = set(counters) - set(COUNTER_FIELDS)
        if unknown:
            raise ValueError(f"unknown counters {sorted(unknown)}")
        queries = [
            Query.equal("kind", [kind.value]),
            *([] if scope is None else [Query.equal("scope", [key_column(scope, SCOPE_CHARS)])]),
            Query.greater_than_equal("bucket", first_bucket),
            Query.less_than_equal("bucket", last_bucket),
            Query.select(["kind", "scope", "bucket", "dim", "long_key", *counters]),
        ]
        result: dict[tuple[str, str, str], tuple[int, ...]] = {}
        for data in self._list(ROLLUPS_TABLE, queries, "read rollups"):
            row_scope, dim = rollup_key_of(data)
            if (scope is not None and row_scope != scope) or data["kind"] != kind.value:
                continue
            key = (row_scope, data["bucket"] if by_bucket else "", dim if by_dim else "")
            values = tuple(data.get(name) or 0 for name in counters)
            before = result.get(key)  # the shards of a shared row add up (and the buckets and dims, unless kept)
            result[key] = values if before is None else tuple(map(add, before, values))
        return result

    def top_rollups(self, kind: RollupKind, scope: str | None, bucket: str, limit: int) -> list[RollupRow]:
        if scope is not None and not storable(scope, SCOPE_CHARS):
            return []
        where = [
            Query.equal("kind", [kind.value]),
            Query.equal("bucket", [bucket]),
            *([] if scope is None else [Query.equal("scope", [scope])]),
        ]
        order = [Query.order_desc("cost_nano"), Query.order_asc("scope"), Query.order_asc("dim")]
        rows: list[RollupRow] = []
        boundary: int | None = None  # the cost of the last row within the limit
        # Case-insensitive matches of another scope are skipped, so read on until ``limit`` exact rows are found,
        # and one more: Appwrite orders scope and dim case-insensitively, SQLite in binary ('B' before 'a'), so
        # when a cost tie crosses the limit every tied row is read and the tie ordered here, as SQLite orders it.
        queries = [*where, *order, Query.select(_ROLLUP_COLUMNS)]
        for data in self._list(ROLLUPS_TABLE, queries, "read top rollups", limit=max(limit, 0) + 1):
            row = _exact_row(data, scope, bucket)
            if row is None:
                continue
            if boundary is not None:
                if row.counters.cost_nano == boundary:
                    rows = [kept for kept in rows if kept.counters.cost_nano > boundary]
                    rows += self._tied(where, boundary, scope, bucket, limit - len(rows))
                break
            rows.append(row)
            if len(rows) >= limit:
                boundary = row.counters.cost_nano
        return sorted(rows, key=_top_order)[: max(limit, 0)]

    def _tied(self, where: list[str], cost: int, scope: str | None, bucket: str, wanted: int) -> list[RollupRow]:
        """The first ``wanted`` rows costing exactly ``cost`` in SQLite's order: the keys of all of them first (a
        day of free requests ties every player at 0), then the counters of those kept."""
        keys = [*where, Query.equal("cost_nano", [cost]), Query.select(["kind", "scope", "bucket", "dim", "long_key"])]
        tied = [
            (rollup_key_of(data), data["$id"])
            for data in self._list(ROLLUPS_TABLE, keys, "read tied top rollups")
            if _exact_row(data, scope, bucket, counters=False) is not None
        ]
        chosen = [row_id for _, row_id in sorted(tied)[:wanted]]
        rows: list[RollupRow] = []
        for at in range(0, len(chosen), _IDS_PER_QUERY):
            queries = [Query.equal("$id", chosen[at : at + _IDS_PER_QUERY]), Query.select(_ROLLUP_COLUMNS)]
            for data in self._list(ROLLUPS_TABLE, queries, "read tied top rollups"):
                row = _exact_row(data, scope, bucket)
                if row is not None:
                    rows.append(row)
        return rows


def _exact_row(data: dict[str, Any], scope: str | None, bucket: str, counters: bool = True) -> RollupRow | None:
    """The row, unless it only matched case-insensitively (another scope or bucket on Appwrite's MariaDB)."""
    row_scope, dim = rollup_key_of(data)
    if (scope is not None and row_scope != scope) or data["bucket"] != bucket:
        return None
    return RollupRow(row_scope, dim, counters_from_data(data) if counters else Counters())


def _top_order(row: RollupRow) -> tuple[int, str, str]:
    return (-row.counters.cost_nano, row.scope, row.dim)
