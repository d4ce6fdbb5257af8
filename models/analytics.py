"""What the tenant summaries and the admin analytics answer: plain response models, read from rollups."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from models.ai_usage import ExactUSD
from models.summaries import CostBreakdown, UsageTotals


class Interval(StrEnum):
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"


class TenantDailyUsage(UsageTotals):
    tenant_id: str | None
    date: date
    requests_by_provider: dict[str, int]
    cost_by_provider: dict[str, ExactUSD]


class TenantMonthlyUsage(UsageTotals):
    tenant_id: str | None
    year: int
    month: int
    requests_by_provider: dict[str, int]
    cost_by_provider: dict[str, ExactUSD]


class TenantUsageSummary(UsageTotals):
    tenant_id: str | None
    days: int
    start: date
    end: date
    by_feature: dict[str, CostBreakdown] = Field(description='Per feature label ("" for events without one)')
    by_task: dict[str, CostBreakdown]
    by_provider: dict[str, CostBreakdown]


class SliceStats(BaseModel):
    """Requests, failures, tokens, exact cost and mean latency of one slice (a bucket, a provider, a model…)."""

    requests: int
    failed_requests: int
    tokens: int
    cost_usd: ExactUSD
    mean_latency_ms: float | None = Field(description="Over the requests that reported a duration; null if none")


class SeriesPoint(SliceStats):
    start: datetime = Field(description="The bucket's first instant (UTC)")


class TimeSeries(BaseModel):
    interval: Interval
    start: datetime
    end: datetime
    points: list[SeriesPoint] = Field(description="Every bucket from start to end, empty ones included, in order")
    total: SliceStats


class Breakdown(BaseModel):
    """One range's figures by a dimension (provider, model, task type × provider…), highest cost first."""

    start: date
    end: date
    by: str
    items: dict[str, SliceStats]


class Percentiles(BaseModel):
    requests: int = Field(description="Requests that reported a duration")
    p50: float | None
    p95: float | None
    p99: float | None
    success_rate: float | None = Field(description="Percent of all requests that succeeded; null if none")


class LatencyReport(BaseModel):
    start: date
    end: date
    relative_error: float = Field(description="Each percentile is within this fraction of the exact one")
    total: Percentiles = Field(description="Every request of the range (of the provider, when one is named)")
    by_provider: dict[str, Percentiles]
    by_model: dict[str, Percentiles]


class PlayerCost(BaseModel):
    tenant_id: str | None
    user_id: str
    requests: int
    tokens: int
    cost_usd: ExactUSD


class TopPlayers(BaseModel):
    start: date
    end: date
    players: list[PlayerCost]


class Operation(SliceStats):
    task_type: str
    provider: str


class TopOperations(BaseModel):
    start: date
    end: date
    operations: list[Operation]


class ErrorRate(BaseModel):
    requests: int
    failed_requests: int
    error_rate: float = Field(description="Percent of requests that failed")


class RealtimeMetrics(BaseModel):
    start: datetime
    end: datetime
    hours: list[SeriesPoint] = Field(description="The last 24 hours by hour, the current one included")
    total: SliceStats
    by_provider: dict[str, SliceStats]
    errors_by_provider: dict[str, ErrorRate]
    latency_by_provider: dict[str, Percentiles]
