"""Usage over time from the rollups: a series by hour, day or month, and the last 24 hours by hour.

Hourly answers read the tenant's hour rows by provider; daily and monthly ones the day rows by provider × model
(or by provider × model × task type when filtered by task type). Unfiltered, the store adds each bucket's rows up.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from models.ai_usage import TaskType
from models.analytics import Interval, RealtimeMetrics, SeriesPoint, TimeSeries
from services.analytics_rows import (
    SLICE,
    WITH_LATENCY,
    RollupRanges,
    Values,
    add_values,
    by_cost,
    error_rate,
    percentiles,
    slice_stats,
)
from services.store.rollups import RollupKind, dim_parts, hour_bucket, month_day_buckets
from services.time_ranges import as_instant, bucket_starts, invalid


@functools.lru_cache(maxsize=2048)
def _hour_start(bucket: str) -> datetime:
    """The first instant of a ``TENANT_HOUR`` bucket (strptime costs ~10 µs; a series reads a row per hour and
    provider)."""
    return datetime(int(bucket[:4]), int(bucket[4:6]), int(bucket[6:8]), int(bucket[8:10]), tzinfo=UTC)


class Series(RollupRanges):
    """The series and the last 24 hours; ``services.analytics.Analytics`` builds on them."""

    clock: Callable[[], datetime]

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
        requests, failures, tokens, exact cost and mean latency; filters narrow what is counted. A bucket counts
        whole, the first and the last too: the rollups keep hours and days, not instants."""
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
            rows = self._rows(  # unfiltered, the store adds each hour's providers up
                RollupKind.TENANT_HOUR, first, last, SLICE, tenant_id, by_dim=provider is not None
            )
            for bucket, dim, values in rows:
                if provider is None or dim == provider:
                    at = _hour_start(bucket)
                    groups[at] = add_values(groups.get(at), values)
        else:
            first = starts[0].date().isoformat()
            if interval is Interval.MONTH:  # the month holding end counts whole, as the one holding start does
                last = month_day_buckets(starts[-1].year, starts[-1].month)[1]
            else:
                last = (stop - timedelta(microseconds=1)).date().isoformat()
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
                groups[at] = add_values(groups.get(at), values)
        points = [SeriesPoint(start=at, **slice_stats(groups.get(at)).model_dump()) for at in starts]
        total: Values | None = None
        for values in groups.values():
            total = add_values(total, values)
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
            by_hour[at] = add_values(by_hour.get(at), values)
            by_provider[provider] = add_values(by_provider.get(provider), values)
        total: Values | None = None
        for values in by_hour.values():
            total = add_values(total, values)
        providers = by_cost(by_provider)
        return RealtimeMetrics(
            start=first,
            end=now,
            hours=[SeriesPoint(start=at, **slice_stats(by_hour.get(at)).model_dump()) for at in starts],
            total=slice_stats(total),
            by_provider={name: slice_stats(values) for name, values in providers.items()},
            errors_by_provider={name: error_rate(values) for name, values in providers.items()},
            latency_by_provider={name: percentiles(values) for name, values in providers.items()},
        )
