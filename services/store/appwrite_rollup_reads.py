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
        queries = [
            Query.equal("kind", [kind.value]),
            Query.equal("bucket", [bucket]),
            *([] if scope is None else [Query.equal("scope", [scope])]),
            Query.order_desc("cost_nano"),
            Query.order_asc("scope"),
            Query.order_asc("dim"),
            Query.select(_ROLLUP_COLUMNS),
        ]
        rows: list[RollupRow] = []
        # Case-insensitive matches of another scope are skipped, so read on until ``limit`` exact rows are found.
        for data in self._list(ROLLUPS_TABLE, queries, "read top rollups", limit=max(limit, 1)):
            row_scope, dim = rollup_key_of(data)
            if (scope is not None and row_scope != scope) or data["bucket"] != bucket:
                continue
            rows.append(RollupRow(row_scope, dim, counters_from_data(data)))
            if len(rows) >= limit:
                break
        return sorted(rows, key=lambda row: (-row.counters.cost_nano, row.scope, row.dim))
