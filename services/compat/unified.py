"""``UsageTracker``, ``ProviderType``, ``OperationType``: the unified tracker's API over the ledger's analytics.

Its answers come from the ledger's rollups instead of a raw log table behind a cache, so ``redis_client`` is
accepted and unused. The conversions, and nothing else:

- ``operation_type`` is the event's ``task_type`` when it is one of the ledger's task types; any other
  (``qualification``, ``other``...) is logged as task type ``general`` with the operation as its ``feature``.
- ``endpoint`` and ``cache_hit`` are kept in the event's ``metadata``; ``latency_ms`` is its
  ``request_duration_ms``; a call without ``user_id`` is logged under the system user (``"system"``).
- An Ollama call's model is logged as ``ollama/<model>``: the ledger prices a local runtime at $0 only by that
  prefix, as the replaced tracker priced every Ollama call.
- A naive ``start_date`` / ``end_date`` (``datetime.utcnow()``) is read as UTC.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from models.ai_usage import AIUsageLog, TaskType
from services.compat._service import SYSTEM_USER, as_utc, caller_names, enum_value, resolve
from services.pricing import parse_model_id
from services.time_ranges import day_range
from services.usage_tracking_service import UsageTrackingService


class ProviderType(StrEnum):
    CEREBRAS = "cerebras"
    OPENROUTER = "openrouter"
    OLLAMA = "ollama"
    ANTHROPIC = "anthropic"
    DEEPSEEK = "deepseek"
    OPENAI = "openai"
    GOOGLE = "google"


class OperationType(StrEnum):
    """The replaced tracker's operations, plus the game's task types (``models.ai_usage.TaskType``)."""

    QUALIFICATION = "qualification"
    OTHER = "other"
    STORY_PROGRESSION = TaskType.STORY_PROGRESSION.value
    COMBAT_NARRATION = TaskType.COMBAT_NARRATION.value
    QUEST_SELECTION = TaskType.QUEST_SELECTION.value
    NPC_DIALOGUE = TaskType.NPC_DIALOGUE.value
    GENERAL = TaskType.GENERAL.value


_TASK_TYPES = frozenset(task.value for task in TaskType)
_NAMES = {"request_duration_ms": "latency_ms", "tokens_input": "prompt_tokens", "tokens_output": "completion_tokens",
          "feature": "operation_type"}  # fmt: skip


class UsageTracker:
    """``UsageTracker(service=None, redis_client=None)``; ranges may be dates or datetimes (naive read as UTC)."""

    def __init__(self, service: UsageTrackingService | None = None, redis_client: Any = None) -> None:
        self.service = resolve(service)
        self.redis_client = redis_client  # kept for callers that read it back; the rollups need no cache

    async def log_api_call(
        self,
        provider: ProviderType | str,
        model: str,
        endpoint: str,
        prompt_tokens: int,
        completion_tokens: int,
        latency_ms: int,
        operation_type: OperationType | str,
        cache_hit: bool = False,
        user_id: str | None = None,
        success: bool = True,
        error_message: str | None = None,
    ) -> AIUsageLog:
        """Log one call and return the stored row; the store is written off the event loop."""
        provider_name, operation = enum_value(provider), enum_value(operation_type)
        if provider_name == ProviderType.OLLAMA and isinstance(model, str) and not parse_model_id(model).local_runtime:
            model = f"ollama/{model}"
        task_type, feature = (operation, None) if operation in _TASK_TYPES else (TaskType.GENERAL.value, operation)
        fields = {
            "user_id": SYSTEM_USER if user_id is None else user_id,
            "provider": provider_name,
            "model": model,
            "task_type": task_type,
            "feature": feature,
            "tokens_input": prompt_tokens,
            "tokens_output": completion_tokens,
            "request_duration_ms": latency_ms,
            "success": success,
            "error_message": error_message,
            "metadata": {"endpoint": endpoint, "cache_hit": cache_hit},
        }
        with caller_names(_NAMES):
            result = await asyncio.to_thread(self.service.log_usage, **fields)
        return result.log  # type: ignore[return-value]  # a fresh request id is never a duplicate

    async def get_real_time_metrics(self) -> dict[str, Any]:
        """The last 24 hours by hour, with per-provider cost, errors and latency: the JSON of
        ``GET /v1/admin/metrics/realtime`` (exact money as decimal strings)."""
        metrics = await asyncio.to_thread(self.service.get_realtime_metrics)
        return metrics.model_dump(mode="json")

    def get_aggregates(
        self,
        start_date: datetime | date,
        end_date: datetime | date,
        interval: str = "day",
        provider: ProviderType | str | None = None,
    ) -> list[dict[str, Any]]:
        """One dict per ``hour`` / ``day`` / ``month`` bucket from the one holding ``start_date`` up to
        ``end_date`` (exclusive), empty buckets included: ``start``, ``requests``, ``failed_requests``, ``tokens``,
        ``cost_usd`` (a decimal string) and ``mean_latency_ms``."""
        series = self.service.get_time_series(
            as_utc(start_date), as_utc(end_date), interval, provider=enum_value(provider)
        )
        return [point.model_dump(mode="json") for point in series.points]

    def get_cost_by_provider(self, start_date: datetime | date, end_date: datetime | date) -> dict[str, float]:
        """Provider -> USD (floats: callers sum and compare them) over the UTC days of ``start_date`` to
        ``end_date``, both included; highest cost first."""
        breakdown = self.service.get_cost_by_provider(as_utc(start_date), as_utc(end_date))
        return {name: float(stats.cost_usd) for name, stats in breakdown.items.items()}

    def get_latency_percentiles(
        self, start_date: datetime | date, end_date: datetime | date, provider: ProviderType | str | None = None
    ) -> dict[str, float | None]:
        """``{"p50", "p95", "p99"}`` in ms over the UTC days of the range (None when no call reported a
        latency), from the rollups' histograms: each within ``models.latency.LATENCY_RELATIVE_ERROR``."""
        first, last = day_range(as_utc(start_date), as_utc(end_date))
        wanted = enum_value(provider)
        result = self.service.get_latency_report(first, last, None, wanted).total
        return {"p50": result.p50, "p95": result.p95, "p99": result.p99}

    def get_success_rate(
        self, start_date: datetime | date, end_date: datetime | date, provider: ProviderType | str | None = None
    ) -> float:
        """Percent of calls that succeeded over the UTC days of the range; 100.0 when there were none."""
        rates = self.service.get_error_rates(as_utc(start_date), as_utc(end_date))
        wanted = enum_value(provider)
        chosen = [rate for name, rate in rates.items() if wanted is None or name == wanted]
        requests = sum(rate.requests for rate in chosen)
        failed = sum(rate.failed_requests for rate in chosen)
        return 100 * (requests - failed) / requests if requests else 100.0
