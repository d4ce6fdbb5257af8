"""Admin analytics from the rollups: series, breakdowns, latency percentiles, error rates, top spenders.

Every answer reads a bounded set of rollup rows (buckets × the providers, models, task types and features
seen in them), never the raw events, so it costs the same at a thousand events or a hundred million. The
store sums what it can (SQLite in SQL, Appwrite over its shards); this module only regroups a few hundred
rows. ``tenant_id`` narrows any answer to one tenant; None is every tenant. The series and the last 24 hours are in
``services.analytics_series``, the range reads and sums they share in ``services.analytics_rows``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from models.analytics import (
    Breakdown,
    ErrorRate,
    LatencyReport,
    Operation,
    PlayerCost,
    TopOperations,
    TopPlayers,
)
from models.latency import LATENCY_RELATIVE_ERROR
from services.analytics_rows import (
    SLICE,
    WITH_LATENCY,
    Values,
    add_values,
    by_cost,
    error_rate,
    percentiles,
    slice_stats,
)
from services.analytics_series import Series
from services.pricing import nano_to_usd
from services.store.rollups import DEFAULT_TENANT, RollupKind
from services.time_ranges import check_limit, day_range

# The narrowest day kind holding each field a breakdown is by.
_BREAKDOWN_KINDS = {
    "provider": RollupKind.TENANT_DAY,
    "model": RollupKind.TENANT_DAY,
    "task_type": RollupKind.TENANT_DAY_TASK,
    "feature": RollupKind.TENANT_DAY_FEATURE,
}


class Analytics(Series):
    """The analytics calls, on any ``UsageStore``; ``UsageTrackingService`` inherits them."""

    clock: Callable[[], datetime]

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
            groups[parts[part]] = add_values(groups.get(parts[part]), values)
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
            groups[key] = add_values(groups.get(key), values)
        operations = []
        for key, values in list(by_cost(groups).items())[:limit]:
            task, provider = key.split("\x1f")
            operations.append(Operation(task_type=task, provider=provider, **slice_stats(values).model_dump()))
        return TopOperations(start=first, end=last, operations=operations)

    def get_error_rates(
        self, start: date | datetime, end: date | datetime, tenant_id: str | None = None
    ) -> dict[str, ErrorRate]:
        """Per provider: requests, failed requests and the percent that failed, highest rate first."""
        groups = self.get_cost_by_provider(start, end, tenant_id).items
        rates = {name: error_rate((s.requests, s.failed_requests)) for name, s in groups.items()}
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
            total = add_values(total, values)
            by_provider[parts["provider"]] = add_values(by_provider.get(parts["provider"]), values)
            by_model[parts["model"]] = add_values(by_model.get(parts["model"]), values)
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
                totals[(row_scope, user)] = add_values(totals.get((row_scope, user)), values)
            best = sorted(totals.items(), key=lambda item: (-item[1][cost], item[0]))[:limit]
            ranked = [(s, u, (v[0], v[2] + v[3], v[cost])) for (s, u), v in best]
        players = [
            PlayerCost(
                tenant_id=row_scope or None, user_id=user, requests=req, tokens=tokens, cost_usd=nano_to_usd(nano)
            )
            for row_scope, user, (req, tokens, nano) in ranked
        ]
        return TopPlayers(start=first, end=last, players=players)


def _breakdown(first: date, last: date, by: str, groups: dict[str, Values]) -> Breakdown:
    return Breakdown(
        start=first, end=last, by=by, items={name: slice_stats(values) for name, values in by_cost(groups).items()}
    )
