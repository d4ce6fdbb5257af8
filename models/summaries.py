"""The summaries callers read back: totals and breakdowns built from rollup counters."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from models.ai_usage import ExactUSD


class CostBreakdown(BaseModel):
    """Requests, tokens and cost of one slice (a task type, a model, a provider)."""

    requests: int
    tokens: int
    estimated_cost: float
    estimated_cost_exact: ExactUSD


class UsageTotals(BaseModel):
    """The totals every summary carries, from the same rollup counters."""

    total_requests: int
    total_tokens: int
    total_input_tokens: int
    total_output_tokens: int
    total_cached_tokens: int
    total_cache_write_tokens: int
    total_reasoning_tokens: int
    total_credits: int
    estimated_cost: float
    estimated_cost_exact: ExactUSD
    failed_requests: int
    unpriced_requests: int
    free_requests: int = Field(description="Requests priced $0 by a free rule (local runtime, OpenRouter :free)")
    other_host_requests: int = Field(
        default=0, description="Requests whose host has no price of its own, priced by the model's reference host"
    )
    platform_credits: int
    usage: dict[str, int] = Field(description="Every usage kind's total, by kind (the README's table of kinds)")
    cost_by_kind: dict[str, ExactUSD] = Field(
        description="Exact USD by usage kind, plus per_request and unsplit (events logged before the split); "
        "adds up to estimated_cost_exact"
    )


class DailyUsageSummary(UsageTotals):
    date: date
    user_id: str
    requests_by_task: dict[str, int]
    cost_by_task: dict[str, float]
    cost_by_task_exact: dict[str, ExactUSD]


class MonthlyUsageSummary(UsageTotals):
    year: int
    month: int
    user_id: str


class GlobalDailyUsage(UsageTotals):
    date: date
    cost_by_model: dict[str, CostBreakdown]
    cost_by_provider: dict[str, CostBreakdown]
    cost_by_task: dict[str, CostBreakdown]


class SessionUsage(UsageTotals):
    session_id: str
    by_task: dict[str, CostBreakdown]


class ModelUsage(UsageTotals):
    user_id: str
    model: str


class DateRangeUsage(UsageTotals):
    user_id: str
    start: date
    end: date
    by_day: dict[date, CostBreakdown]
    by_task: dict[str, CostBreakdown]


class UsageSummary(DateRangeUsage):
    days: int
