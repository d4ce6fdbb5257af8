"""The summaries the game asks for: a player's day, month, date range, model and session, the rate limiter's count,
and everyone's day. Each reads a few rollup rows, never raw events; ``UsageTrackingService`` inherits them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import structlog

from models.counters import Counters
from models.summaries import (
    DailyUsageSummary,
    DateRangeUsage,
    GlobalDailyUsage,
    ModelUsage,
    MonthlyUsageSummary,
    SessionUsage,
    UsageSummary,
)
from services import deadlines, summaries
from services.errors import NotFound
from services.pricing import nano_to_usd
from services.settings import Settings
from services.store import UsageStore
from services.store.rollups import (
    BREAKDOWN_COUNTERS,
    TOTAL_COUNTERS,
    RollupKind,
    breakdowns_by,
    dim_parts,
    month_day_buckets,
    player_key,
    total_of,
)
from services.time_ranges import MAX_RANGE_DAYS, as_day, day_range, invalid

log = structlog.get_logger("ai_usage")


@dataclass(frozen=True)
class RequestCount:
    """The rate limiter's answer; ``degraded`` is True when the store failed and 0 was returned."""

    user_id: str
    date: date
    count: int
    degraded: bool


class UsageSummaries:
    """A player's and everyone's summaries; ``UsageTrackingService`` inherits them."""

    store: UsageStore
    settings: Settings
    clock: Callable[[], datetime]

    def _utc_day(self, value: object) -> date:
        """The UTC day a summary is for: today by default; a datetime counts by its UTC date."""
        return self.today() if value is None else as_day(value, "date")  # type: ignore[arg-type]

    def today(self) -> date:
        return self.clock().astimezone(UTC).date()

    def get_daily_usage(
        self, user_id: str, date: date | None = None, tenant_id: str | None = None
    ) -> DailyUsageSummary:
        day = self._utc_day(date)
        by_task = self.store.get_rollups(RollupKind.USER_DAY, _scope("user_id", user_id, tenant_id), day.isoformat())
        return summaries.daily_summary(user_id, day, total_of(by_task), by_task)

    def get_monthly_cost(
        self, user_id: str, year: int | None = None, month: int | None = None, tenant_id: str | None = None
    ) -> MonthlyUsageSummary:
        year, month = self._month(year, month)
        # The player's day rows of the month (at most 31 × the task types), added up by the store: a month row of its
        # own would cost every event one more random row to write.
        first, last = month_day_buckets(year, month)
        rows = self.store.sum_rollups(
            RollupKind.USER_DAY, _scope("user_id", user_id, tenant_id), first, last, TOTAL_COUNTERS, by_bucket=False,
            by_dim=False,
        )  # fmt: skip
        counters = next((Counters(*values) for values in rows.values()), Counters())
        return summaries.monthly_summary(user_id, year, month, counters)

    def _month(self, year: int | None, month: int | None) -> tuple[int, int]:
        today = self.today()
        year = today.year if year is None else year
        month = today.month if month is None else month
        if not isinstance(month, int) or isinstance(month, bool) or not 1 <= month <= 12:
            raise invalid("month", "must be an integer from 1 to 12")
        if not isinstance(year, int) or isinstance(year, bool) or not 1970 <= year <= 9999:
            raise invalid("year", "must be an integer from 1970 to 9999")
        return year, month

    def get_global_daily_usage(self, date: date | None = None) -> GlobalDailyUsage:
        """Everyone's usage on a UTC day (every tenant), by model, provider and task type."""
        day = self._utc_day(date).isoformat()
        # Totals, providers and models from every tenant's day rows; task types from the feature × task type rows,
        # summing only what a breakdown shows (as the tenant summary does).
        by_provider: dict[str, Counters] = {}
        by_model: dict[str, Counters] = {}
        for (_tenant, _day, dim), values in self.store.sum_rollups(
            RollupKind.TENANT_DAY, None, day, day, TOTAL_COUNTERS
        ).items():
            parts, counters = dim_parts(RollupKind.TENANT_DAY, dim), Counters(*values)
            by_provider[parts["provider"]] = by_provider.get(parts["provider"], Counters()) + counters
            by_model[parts["model"]] = by_model.get(parts["model"], Counters()) + counters
        by_feature = self.store.sum_rollups(RollupKind.TENANT_DAY_FEATURE, None, day, day, BREAKDOWN_COUNTERS)
        by_task = breakdowns_by(RollupKind.TENANT_DAY_FEATURE, by_feature, ("task_type",), BREAKDOWN_COUNTERS)
        return summaries.global_daily(
            self._utc_day(date), total_of(by_provider), by_model, by_provider, by_task["task_type"]
        )

    def get_total_daily_cost(self, date: date | None = None) -> float:
        """Everyone's cost on a UTC day, in USD (a float, as the replaced service returned)."""
        day = self._utc_day(date).isoformat()
        rows = self.store.sum_rollups(RollupKind.TENANT_DAY, None, day, day, ("cost_nano",))
        return float(nano_to_usd(sum(values[0] for values in rows.values())))

    def request_count_today(self, user_id: str, tenant_id: str | None = None) -> RequestCount:
        """The rate limiter's count. Fail-open and fast: if the store cannot answer within the count deadline
        (``AI_USAGE_COUNT_DEADLINE_MS``), 0 and ``degraded=True``."""
        day, scope = self.today(), _scope("user_id", user_id, tenant_id)  # a bad id is the caller's error
        try:
            with deadlines.deadline(self.settings.count_deadline_ms / 1000):
                by_task = self.store.get_rollups(RollupKind.USER_DAY, scope, day.isoformat())
        except Exception as exc:  # the game must not stop, or wait, because the ledger is down or slow
            log.warning("rate_limit.count_degraded", user_id=user_id, error=repr(exc))
            return RequestCount(user_id, day, 0, True)
        return RequestCount(user_id, day, sum(c.requests for c in by_task.values()), False)

    def get_user_request_count_today(self, user_id: str, tenant_id: str | None = None) -> int:
        return self.request_count_today(user_id, tenant_id).count

    def get_usage_by_date_range(
        self, user_id: str, start: date, end: date, tenant_id: str | None = None
    ) -> DateRangeUsage:
        """Usage of ``user_id`` from ``start`` to ``end``, both UTC days and both included."""
        start, end = day_range(start, end)
        scope = _scope("user_id", user_id, tenant_id)
        rows = self.store.get_rollup_range(RollupKind.USER_DAY, scope, start.isoformat(), end.isoformat())
        by_day: dict[str, Counters] = {}
        by_task: dict[str, Counters] = {}
        for (bucket, task), counters in rows.items():
            by_day[bucket] = by_day.get(bucket, Counters()) + counters
            by_task[task] = by_task.get(task, Counters()) + counters
        total = total_of(by_day)
        return DateRangeUsage(
            user_id=user_id,
            start=start,
            end=end,
            by_day={date.fromisoformat(k): v for k, v in summaries.breakdowns(by_day).items()},
            by_task=summaries.breakdowns(by_task),
            **summaries.totals_fields(total),
        )

    def get_usage_summary(self, user_id: str, days: int = 30, tenant_id: str | None = None) -> UsageSummary:
        """The last ``days`` UTC days, today included, with a per-task breakdown."""
        if not isinstance(days, int) or not 1 <= days <= MAX_RANGE_DAYS:
            raise invalid("days", f"must be an integer from 1 to {MAX_RANGE_DAYS}")
        end = self.today()
        usage = self.get_usage_by_date_range(user_id, end - timedelta(days=days - 1), end, tenant_id)
        return UsageSummary(days=days, **usage.model_dump())

    def get_usage_by_model(self, user_id: str, model: str, tenant_id: str | None = None) -> ModelUsage:
        by_model = self.store.get_rollups(RollupKind.USER_MODEL, _scope("user_id", user_id, tenant_id), "")
        counters = by_model.get(model, Counters())
        return ModelUsage(user_id=user_id, model=model, **summaries.totals_fields(counters))

    def get_user_total_credits(self, user_id: str, tenant_id: str | None = None) -> int:
        """Platform credits this user has been charged over all time (the sum of each event's).

        Sums the user's all-time rollups by model: one row per model the player used, never the raw events.
        """
        return total_of(
            self.store.get_rollups(RollupKind.USER_MODEL, _scope("user_id", user_id, tenant_id), "")
        ).platform_credits

    def get_session_usage(self, session_id: str, tenant_id: str | None = None) -> SessionUsage:
        by_task = self.store.get_rollups(RollupKind.SESSION, _scope("session_id", session_id, tenant_id), "")
        if not by_task:
            raise NotFound(f"no usage recorded for session {session_id!r}")
        return SessionUsage(
            session_id=session_id, by_task=summaries.breakdowns(by_task), **summaries.totals_fields(total_of(by_task))
        )


def _scope(field: str, value: str, tenant_id: str | None) -> str:
    """The rollup scope of a player or a session. An id holding the separator of tenant-scoped keys (which no
    event can have) is refused: "studio-a<US>player-1" in the default tenant would be studio-a's player-1."""
    if "\x1f" in value:
        raise invalid(field, "must not contain control characters (U+001F)")
    return player_key(value, tenant_id)
