"""Admin analytics from the rollups: series, breakdowns, latency percentiles, error rates, top spenders.

Every answer reads a bounded set of rollup rows (buckets × the providers, models, task types and features
seen in them), never the raw events, so it costs the same at a thousand events or a hundred million. The
store sums what it can (SQLite in SQL, Appwrite over its shards); this module only regroups a few hundred
rows. ``tenant_id`` narrows any answer to one tenant; None is every tenant.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from operator import add

from models.ai_usage import TaskType
from models.analytics import (
    Breakdown,
    ErrorRate,
    Interval,
    LatencyReport,
    Operation,
    Percentiles,
    PlayerCost,
    RealtimeMetrics,
    SeriesPoint,
    SliceStats,
    TimeSeries,
    TopOperations,
    TopPlayers,
)
from models.latency import LATENCY_COUNTERS, LATENCY_RELATIVE_ERROR, percentile
from services.pricing import nano_to_usd
from services.store import UsageStore
from services.store.rollups import DEFAULT_TENANT, RollupKind, dim_parts, hour_bucket
from services.time_ranges import as_instant, bucket_starts, check_limit, day_range, invalid

SLICE = ("requests", "failed_requests", "tokens_input", "tokens_output", "cost_nano", "timed_requests",
         "latency_ms_total")  # fmt: skip
WITH_LATENCY = (*SLICE, *LATENCY_COUNTERS)

Values = tuple[int, ...]


def _add(a: Values | None, b: Values) -> Values:
    # map(add) is 3x a generator over zip: this runs once per rollup row read, on tuples of up to 67 counters.
    return b if a is None else tuple(map(add, a, b))


@functools.lru_cache(maxsize=2048)
def _hour_start(bucket: str) -> datetime:
    """The first instant of a ``TENANT_HOUR`` bucket (strptime costs ~10 µs; a series reads a row per hour and
    provider)."""
    return datetime(int(bucket[:4]), int(bucket[4:6]), int(bucket[6:8]), int(bucket[8:10]), tzinfo=UTC)


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


# The narrowest day kind holding each field a breakdown is by.
_BREAKDOWN_KINDS = {
    "provider": RollupKind.TENANT_DAY,
    "model": RollupKind.TENANT_DAY,
    "task_type": RollupKind.TENANT_DAY_TASK,
    "feature": RollupKind.TENANT_DAY_FEATURE,
}


def _by_cost(groups: dict[str, Values]) -> dict[str, Values]:
    cost = SLICE.index("cost_nano")
    return dict(sorted(groups.items(), key=lambda item: (-item[1][cost], item[0])))


class Analytics:
    """The analytics calls, on any ``UsageStore``; ``UsageTrackingService`` inherits them."""

    store: UsageStore
    clock: Callable[[], datetime]

    # -- reading -----------------------------------------------------------------------------------------
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

    # -- series ------------------------------------------------------------------------------------------
    def get_time_series(
        self,
        start: date | datetime,
        end: date | datetime,
        interval: Interval | str = Interval.DAY,
        provider: str | None = None,
        model: str | None = None,
        task_type: TaskType | str | None = None,
        tenant_id: str | None = None,
    ) -> TimeSeries:
        """Buckets from the one holding ``start`` up to ``end`` (exclusive), every bucket present, each with
        requests, failures, tokens, exact cost and mean latency; filters narrow what is counted."""
        try:
            interval = Interval(interval)
        except ValueError:
            raise invalid("interval", "must be one of hour, day, month") from None
        if task_type is not None and task_type not in {t.value for t in TaskType}:
            raise invalid("task_type", f"must be one of {', '.join(t.value for t in TaskType)}")
        begin, stop = as_instant(start, "start"), as_instant(end, "end")
        if stop <= begin:
            raise invalid("end", "must be after start")
        starts = bucket_starts(begin, stop, interval)
        groups: dict[datetime, Values] = {}
        if interval is Interval.HOUR:
            if model is not None or task_type is not None:
                raise invalid("interval", "filtering by model or task type needs interval day or month")
            first, last = hour_bucket(starts[0]), hour_bucket(starts[-1])
            by_dim = provider is not None  # unfiltered, the store adds each hour's providers up
            for bucket, dim, values in self._rows(RollupKind.TENANT_HOUR, first, last, SLICE, tenant_id, True, by_dim):
                if provider is None or dim == provider:
                    at = _hour_start(bucket)
                    groups[at] = _add(groups.get(at), values)
        else:
            first_day, last_day = starts[0].date(), (stop - timedelta(microseconds=1)).date()
            first, last = first_day.isoformat(), last_day.isoformat()
            wanted = {"provider": provider, "model": model, "task_type": task_type}
            kind = RollupKind.TENANT_DAY if task_type is None else RollupKind.TENANT_DAY_TASK
            filtered = any(value is not None for value in wanted.values())
            # Unfiltered, the store adds each day's rows up; filtered, a dim is judged once, not once per day.
            kept: dict[str, bool] = {}
            starts_of: dict[str, datetime] = {}
            for bucket, dim, values in self._rows(kind, first, last, SLICE, tenant_id, by_dim=filtered):
                keep = kept.get(dim)
                if keep is None:
                    parts = dim_parts(kind, dim) if filtered else {}
                    keep = kept[dim] = all(value is None or parts.get(name) == value for name, value in wanted.items())
                if not keep:
                    continue
                at = starts_of.get(bucket)
                if at is None:
                    day = date.fromisoformat(bucket)
                    at = starts_of[bucket] = datetime(
                        day.year, day.month, 1 if interval is Interval.MONTH else day.day, tzinfo=UTC
                    )
                groups[at] = _add(groups.get(at), values)
        points = [SeriesPoint(start=at, **slice_stats(groups.get(at)).model_dump()) for at in starts]
        total: Values | None = None
        for values in groups.values():
            total = _add(total, values)
        return TimeSeries(interval=interval, start=begin, end=stop, points=points, total=slice_stats(total))

    def get_realtime_metrics(self, tenant_id: str | None = None) -> RealtimeMetrics:
        """The last 24 hours, rolling by hour (the current hour included), with per-provider figures."""
        now = self.clock().astimezone(UTC)
        first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
        starts = [first + timedelta(hours=h) for h in range(24)]
        by_hour: dict[datetime, Values] = {}
        by_provider: dict[str, Values] = {}
        rows = self._rows(RollupKind.TENANT_HOUR, hour_bucket(first), hour_bucket(now), WITH_LATENCY, tenant_id)
        for bucket, provider, values in rows:
            at = _hour_start(bucket)
            by_hour[at] = _add(by_hour.get(at), values)
            by_provider[provider] = _add(by_provider.get(provider), values)
        total: Values | None = None
        for values in by_hour.values():
            total = _add(total, values)
        providers = _by_cost(by_provider)
        return RealtimeMetrics(
            start=first,
            end=now,
            hours=[SeriesPoint(start=at, **slice_stats(by_hour.get(at)).model_dump()) for at in starts],
            total=slice_stats(total),
            by_provider={name: slice_stats(values) for name, values in providers.items()},
            errors_by_provider={name: _error_rate(values) for name, values in providers.items()},
            latency_by_provider={name: percentiles(values) for name, values in providers.items()},
        )

    # -- breakdowns --------------------------------------------------------------------------------------
    def get_cost_by_provider(
        self, start: date | datetime, end: date | datetime, tenant_id: str | None = None
    ) -> Breakdown:
        return self._breakdown_by(start, end, "provider", tenant_id)

    def get_cost_by_model(
        self, start: date | datetime, end: date | datetime, tenant_id: str | None = None
    ) -> Breakdown:
        return self._breakdown_by(start, end, "model", tenant_id)

    def get_cost_by_task_type(
        self, start: date | datetime, end: date | datetime, tenant_id: str | None = None
    ) -> Breakdown:
        return self._breakdown_by(start, end, "task_type", tenant_id)

    def get_cost_by_feature(
        self, start: date | datetime, end: date | datetime, tenant_id: str | None = None
    ) -> Breakdown:
        return self._breakdown_by(start, end, "feature", tenant_id)

    def _breakdown_by(
        self, start: date | datetime, end: date | datetime, part: str, tenant_id: str | None
    ) -> Breakdown:
        first, last = day_range(start, end)
        groups: dict[str, Values] = {}
        for _bucket, parts, values in self._days(_BREAKDOWN_KINDS[part], first, last, SLICE, tenant_id, False):
            groups[parts[part]] = _add(groups.get(parts[part]), values)
        return _breakdown(first, last, part, groups)

    def get_top_operations(
        self, start: date | datetime, end: date | datetime, limit: int = 10, tenant_id: str | None = None
    ) -> TopOperations:
        """Task type × provider by cost, with calls, cost and mean latency."""
        first, last = day_range(start, end)
        check_limit(limit)
        groups: dict[str, Values] = {}
        for _bucket, parts, values in self._days(RollupKind.TENANT_DAY_TASK, first, last, SLICE, tenant_id, False):
            key = f"{parts['task_type']}\x1f{parts['provider']}"
            groups[key] = _add(groups.get(key), values)
        operations = []
        for key, values in list(_by_cost(groups).items())[:limit]:
            task, provider = key.split("\x1f")
            operations.append(Operation(task_type=task, provider=provider, **slice_stats(values).model_dump()))
        return TopOperations(start=first, end=last, operations=operations)

    def get_error_rates(
        self, start: date | datetime, end: date | datetime, tenant_id: str | None = None
    ) -> dict[str, ErrorRate]:
        """Per provider: requests, failed requests and the percent that failed, highest rate first."""
        groups = self.get_cost_by_provider(start, end, tenant_id).items
        rates = {name: _error_rate((s.requests, s.failed_requests)) for name, s in groups.items()}
        return dict(sorted(rates.items(), key=lambda item: (-item[1].error_rate, item[0])))

    def get_latency_report(
        self, start: date | datetime, end: date | datetime, tenant_id: str | None = None, provider: str | None = None
    ) -> LatencyReport:
        """p50/p95/p99 latency and success rate per provider and per model, from the rollups' histograms."""
        first, last = day_range(start, end)
        by_provider: dict[str, Values] = {}
        by_model: dict[str, Values] = {}
        total: Values = (0,) * len(WITH_LATENCY)
        for _bucket, parts, values in self._days(RollupKind.TENANT_DAY, first, last, WITH_LATENCY, tenant_id, False):
            if provider is not None and parts["provider"] != provider:
                continue
            total = _add(total, values)
            by_provider[parts["provider"]] = _add(by_provider.get(parts["provider"]), values)
            by_model[parts["model"]] = _add(by_model.get(parts["model"]), values)
        return LatencyReport(
            start=first,
            end=last,
            relative_error=LATENCY_RELATIVE_ERROR,
            total=percentiles(total),
            by_provider={name: percentiles(values) for name, values in sorted(by_provider.items())},
            by_model={name: percentiles(values) for name, values in sorted(by_model.items())},
        )

    def get_top_players(
        self,
        start: date | datetime,
        end: date | datetime | None = None,
        limit: int = 10,
        tenant_id: str | None = None,
    ) -> TopPlayers:
        """The players who cost the most over a day (a few index entries) or a range of days (every active
        player's day rows in it), per tenant or overall."""
        first, last = day_range(start, start if end is None else end)
        check_limit(limit)
        scope = None if tenant_id is None else tenant_id or DEFAULT_TENANT
        cost = SLICE.index("cost_nano")
        if first == last:
            ranked = [
                (row.scope, row.dim, (row.counters.requests, row.counters.tokens_total, row.counters.cost_nano))
                for row in self.store.top_rollups(RollupKind.PLAYER_DAY, scope, first.isoformat(), limit)
            ]
        else:
            totals: dict[tuple[str, str], Values] = {}
            rows = self.store.sum_rollups(
                RollupKind.PLAYER_DAY, scope, first.isoformat(), last.isoformat(), SLICE, by_bucket=False
            )
            for (row_scope, _bucket, user), values in rows.items():
                totals[(row_scope, user)] = _add(totals.get((row_scope, user)), values)
            best = sorted(totals.items(), key=lambda item: (-item[1][cost], item[0]))[:limit]
            ranked = [(s, u, (v[0], v[2] + v[3], v[cost])) for (s, u), v in best]
        players = [
            PlayerCost(
                tenant_id=row_scope or None, user_id=user, requests=req, tokens=tokens, cost_usd=nano_to_usd(nano)
            )
            for row_scope, user, (req, tokens, nano) in ranked
        ]
        return TopPlayers(start=first, end=last, players=players)


def _error_rate(values: Sequence[int]) -> ErrorRate:
    requests, failed = values[0], values[1]
    return ErrorRate(requests=requests, failed_requests=failed, error_rate=100 * failed / requests if requests else 0.0)


def _breakdown(first: date, last: date, by: str, groups: dict[str, Values]) -> Breakdown:
    return Breakdown(
        start=first, end=last, by=by, items={name: slice_stats(values) for name, values in _by_cost(groups).items()}
    )
