"""Turn rollup counters into the summary models callers read. Pure functions, no store."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from models.ai_usage import TaskType
from models.counters import Counters
from models.summaries import CostBreakdown, DailyUsageSummary, GlobalDailyUsage, MonthlyUsageSummary
from models.usage_kinds import USAGE_KINDS
from services.pricing import nano_to_usd


def breakdown(counters: Counters) -> CostBreakdown:
    exact = nano_to_usd(counters.cost_nano)
    return CostBreakdown(
        requests=counters.requests,
        tokens=counters.tokens_total,
        estimated_cost=float(exact),
        estimated_cost_exact=exact,
    )


def breakdowns(parts: Mapping[str, Counters]) -> dict[str, CostBreakdown]:
    return {key: breakdown(counters) for key, counters in sorted(parts.items())}


def totals_fields(counters: Counters) -> dict[str, Any]:
    """The ``UsageTotals`` fields of a set of counters, for every summary model (they all extend it)."""
    exact = nano_to_usd(counters.cost_nano)
    usage = counters.usage
    return {
        "total_requests": counters.requests,
        "total_tokens": counters.tokens_total,
        # The replaced service's names for the kinds it had; every kind is in ``usage``.
        **{kind.total_field: usage[kind.name] for kind in USAGE_KINDS if kind.total_field},
        "usage": usage,
        "cost_by_kind": {part: nano_to_usd(nano) for part, nano in counters.cost_nano_by_kind.items()},
        "estimated_cost": float(exact),
        "estimated_cost_exact": exact,
        "failed_requests": counters.failed_requests,
        "unpriced_requests": counters.unpriced_requests,
        "free_requests": counters.free_requests,
        "other_host_requests": counters.other_host_requests,
        "platform_credits": counters.platform_credits,
    }


def daily_summary(user_id: str, day: date, total: Counters, by_task: Mapping[str, Counters]) -> DailyUsageSummary:
    # Every task type is present, zero or not, so callers can index without a KeyError.
    tasks = {task.value: by_task.get(task.value, Counters()) for task in TaskType}
    return DailyUsageSummary(
        date=day,
        user_id=user_id,
        requests_by_task={task: c.requests for task, c in tasks.items()},
        cost_by_task={task: float(nano_to_usd(c.cost_nano)) for task, c in tasks.items()},
        cost_by_task_exact={task: nano_to_usd(c.cost_nano) for task, c in tasks.items()},
        **totals_fields(total),
    )


def monthly_summary(user_id: str, year: int, month: int, total: Counters) -> MonthlyUsageSummary:
    return MonthlyUsageSummary(year=year, month=month, user_id=user_id, **totals_fields(total))


def global_daily(
    day: date,
    total: Counters,
    by_model: Mapping[str, Counters],
    by_provider: Mapping[str, Counters],
    by_task: Mapping[str, Counters],
) -> GlobalDailyUsage:
    return GlobalDailyUsage(
        date=day,
        cost_by_model=breakdowns(by_model),
        cost_by_provider=breakdowns(by_provider),
        cost_by_task=breakdowns(by_task),
        **totals_fields(total),
    )
