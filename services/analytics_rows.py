"""How the analytics read the rollups: the counters a slice of usage sums, adding rows up, and the two reads.

``RollupRanges`` is the base of the analytics mixins (``services.analytics_series``, ``services.analytics``): one
kind's rows over a bucket range, summed by the store as far as it can (SQLite in SQL, Appwrite over its shards),
every tenant's unless one is named.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from operator import add

from models.analytics import ErrorRate, Percentiles, SliceStats
from models.latency import LATENCY_COUNTERS, percentile
from services.pricing import nano_to_usd
from services.store import UsageStore
from services.store.rollups import DEFAULT_TENANT, RollupKind, dim_parts

SLICE = ("requests", "failed_requests", "tokens_input", "tokens_output", "cost_nano", "timed_requests",
         "latency_ms_total")  # fmt: skip
WITH_LATENCY = (*SLICE, *LATENCY_COUNTERS)

Values = tuple[int, ...]


def add_values(a: Values | None, b: Values) -> Values:
    # map(add) is 3x a generator over zip: this runs once per rollup row read, on tuples of up to 67 counters.
    return b if a is None else tuple(map(add, a, b))


def slice_stats(values: Sequence[int] | None) -> SliceStats:
    requests, failed, tokens_in, tokens_out, cost, timed, latency = (values or (0,) * len(SLICE))[: len(SLICE)]
    return SliceStats(
        requests=requests,
        failed_requests=failed,
        tokens=tokens_in + tokens_out,
        cost_usd=nano_to_usd(cost),
        mean_latency_ms=latency / timed if timed else None,
    )


def percentiles(values: Sequence[int]) -> Percentiles:
    requests, failed = values[0], values[1]
    histogram = values[len(SLICE) :]
    return Percentiles(
        requests=values[SLICE.index("timed_requests")],
        p50=percentile(histogram, 50),
        p95=percentile(histogram, 95),
        p99=percentile(histogram, 99),
        success_rate=100 * (requests - failed) / requests if requests else None,
    )


def by_cost(groups: dict[str, Values]) -> dict[str, Values]:
    cost = SLICE.index("cost_nano")
    return dict(sorted(groups.items(), key=lambda item: (-item[1][cost], item[0])))


def error_rate(values: Sequence[int]) -> ErrorRate:
    requests, failed = values[0], values[1]
    return ErrorRate(requests=requests, failed_requests=failed, error_rate=100 * failed / requests if requests else 0.0)


class RollupRanges:
    """Reads one kind's rows over a range of buckets; the analytics mixins build on it."""

    store: UsageStore

    def _rows(
        self,
        kind: RollupKind,
        first: str,
        last: str,
        counters: Sequence[str],
        tenant_id: str | None,
        by_bucket: bool = True,
        by_dim: bool = True,
    ) -> Iterable[tuple[str, str, Values]]:
        """(bucket, dim, values) of one kind's rows in a bucket range, every tenant's unless one is named;
        ``by_bucket=False``: summed over the range by the store (bucket ""); ``by_dim=False``: over the dims."""
        scope = None if tenant_id is None else tenant_id or DEFAULT_TENANT
        rows = self.store.sum_rollups(kind, scope, first, last, counters, by_bucket=by_bucket, by_dim=by_dim)
        for (_scope, bucket, dim), values in rows.items():
            yield bucket, dim, values

    def _days(
        self,
        kind: RollupKind,
        first: date,
        last: date,
        counters: Sequence[str],
        tenant_id: str | None,
        by_bucket: bool = True,
    ) -> Iterable[tuple[str, dict[str, str], Values]]:
        """(bucket, parts, values) of one of the tenant's day kinds, its dim split into its fields."""
        rows = self._rows(kind, first.isoformat(), last.isoformat(), counters, tenant_id, by_bucket)
        for bucket, dim, values in rows:
            yield bucket, dim_parts(kind, dim), values
