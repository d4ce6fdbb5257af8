"""Per-tenant summaries from the rollups: a tenant's day, month, and last days by feature and task type.

They read the tenant's shared rollups (its days by provider × model and by feature × task type), a bounded number
of rows whatever the volume. ``tenant_id`` None is the default tenant (events logged without one).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

from models.analytics import TenantDailyUsage, TenantMonthlyUsage, TenantUsageSummary
from models.counters import Counters
from services import summaries
from services.pricing import nano_to_usd
from services.store import UsageStore
from services.store.rollups import (
    BREAKDOWN_COUNTERS,
    TOTAL_COUNTERS,
    RollupKind,
    breakdowns_by,
    dim_parts,
    month_day_buckets,
    tenant_key,
    total_of,
)
from services.time_ranges import MAX_RANGE_DAYS, invalid


def _by_provider(rows: dict[tuple[str, str, str], tuple[int, ...]]) -> dict[str, Counters]:
    # Summed over the range by the store (by_bucket=False): one row per provider and model.
    by: dict[str, Counters] = {}
    for (_scope, _bucket, dim), values in sorted(rows.items()):
        provider = dim_parts(RollupKind.TENANT_DAY, dim)["provider"]
        by[provider] = by.get(provider, Counters()) + Counters(*values)
    return by


def _provider_fields(by: dict[str, Counters]) -> dict[str, object]:
    return {
        "requests_by_provider": {name: c.requests for name, c in by.items()},
        "cost_by_provider": {name: nano_to_usd(c.cost_nano) for name, c in by.items()},
        **summaries.totals_fields(total_of(by)),
    }


class TenantUsage:
    """The tenant summaries; ``UsageTrackingService`` inherits them."""

    store: UsageStore
    clock: Callable[[], datetime]
    today: Callable[[], date]
    _month: Callable[[int | None, int | None], tuple[int, int]]
    _utc_day: Callable[[object], date]

    def get_tenant_daily_usage(self, tenant_id: str | None, date: date | datetime | None = None) -> TenantDailyUsage:
        day = self._utc_day(date)
        rows = self.store.sum_rollups(
            RollupKind.TENANT_DAY, tenant_key(tenant_id), day.isoformat(), day.isoformat(), TOTAL_COUNTERS,
            by_bucket=False,
        )  # fmt: skip
        return TenantDailyUsage(tenant_id=tenant_id, date=day, **_provider_fields(_by_provider(rows)))

    def get_tenant_monthly_usage(
        self, tenant_id: str | None, year: int | None = None, month: int | None = None
    ) -> TenantMonthlyUsage:
        year, month = self._month(year, month)
        first, last = month_day_buckets(year, month)
        rows = self.store.sum_rollups(
            RollupKind.TENANT_DAY, tenant_key(tenant_id), first, last, TOTAL_COUNTERS, by_bucket=False
        )
        return TenantMonthlyUsage(tenant_id=tenant_id, year=year, month=month, **_provider_fields(_by_provider(rows)))

    def get_tenant_usage_summary(self, tenant_id: str | None, days: int = 30) -> TenantUsageSummary:
        """The last ``days`` UTC days, today included: totals, and breakdowns by feature, task type and provider."""
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_RANGE_DAYS:
            raise invalid("days", f"must be an integer from 1 to {MAX_RANGE_DAYS}")
        end = self.today()
        start = end - timedelta(days=days - 1)
        scope, first, last = tenant_key(tenant_id), start.isoformat(), end.isoformat()
        # Totals and providers from the day rows (one per provider and model a day); features and task types from the
        # feature × task type rows, summing only what a breakdown shows.
        by_provider = _by_provider(
            self.store.sum_rollups(RollupKind.TENANT_DAY, scope, first, last, TOTAL_COUNTERS, by_bucket=False)
        )
        kind = RollupKind.TENANT_DAY_FEATURE
        rows = self.store.sum_rollups(kind, scope, first, last, BREAKDOWN_COUNTERS, by_bucket=False)
        by = breakdowns_by(kind, rows, ("feature", "task_type"), BREAKDOWN_COUNTERS)
        return TenantUsageSummary(
            tenant_id=tenant_id,
            days=days,
            start=start,
            end=end,
            by_feature=summaries.breakdowns(by["feature"]),
            by_task=summaries.breakdowns(by["task_type"]),
            by_provider=summaries.breakdowns(by_provider),
            **summaries.totals_fields(total_of(by_provider)),
        )
