"""``UsageTracker`` called as its integration guide calls it: awaited ``log_api_call`` and
``get_real_time_metrics``, synchronous aggregates, cost by provider, latency percentiles and success rate, with
``ProviderType`` / ``OperationType`` and naive ``datetime.utcnow()``-style ranges."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from models.ai_usage import TaskType
from models.latency import LATENCY_RELATIVE_ERROR
from services.compat import SYSTEM_USER, OperationType, ProviderType, UsageTracker
from services.errors import ValidationFailed
from services.pricing import PriceBook
from services.store.sqlite_store import SQLiteUsageStore
from services.usage_tracking_service import UsageTrackingService
from tests.conftest import BACKENDS, ledger_on

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class Clock:
    """The ledger's clock, moved by the test so each call is logged at a chosen instant."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=BACKENDS[:2])  # SQLite and one Appwrite version: the facade is the same code on both
def ledger(request: pytest.FixtureRequest, tmp_path: Path, price_book: PriceBook) -> Iterator[UsageTrackingService]:
    yield from ledger_on(request.param, tmp_path, price_book, Clock())


@pytest.fixture
def sqlite_ledger(sqlite_store: SQLiteUsageStore, price_book: PriceBook) -> UsageTrackingService:
    return UsageTrackingService(sqlite_store, price_book, clock=Clock())


async def route_five_calls(tracker: UsageTracker, clock: Clock) -> list:
    """The guide's calls: a success and a failure (no user) on Cerebras, then Anthropic, Ollama and DeepSeek."""
    rows = []
    clock.now = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    rows.append(
        await tracker.log_api_call(
            ProviderType.DEEPSEEK, "deepseek-chat", "/chat/completions", 1000, 1000, 400, OperationType.QUALIFICATION
        )
    )
    clock.now = datetime(2026, 11, 24, 10, 15, tzinfo=UTC)
    rows.append(
        await tracker.log_api_call(
            provider=ProviderType.CEREBRAS,
            model="llama3.1-8b",
            endpoint="/chat/completions",
            prompt_tokens=500,
            completion_tokens=100,
            latency_ms=120,
            operation_type=OperationType.QUALIFICATION,
            cache_hit=False,
            user_id="user_123",
            success=True,
        )
    )
    clock.now = datetime(2026, 11, 24, 10, 40, tzinfo=UTC)
    rows.append(
        await tracker.log_api_call(
            provider=ProviderType.CEREBRAS,
            model="llama3.1-8b",
            endpoint="/chat/completions",
            prompt_tokens=0,
            completion_tokens=0,
            latency_ms=3000,
            operation_type=OperationType.QUALIFICATION,
            success=False,
            error_message="upstream timeout",
        )
    )
    clock.now = datetime(2026, 11, 24, 11, 5, tzinfo=UTC)
    rows.append(
        await tracker.log_api_call(
            ProviderType.ANTHROPIC,
            "claude-3-haiku",
            "/v1/messages",
            4000,
            800,
            900,
            OperationType.NPC_DIALOGUE,
            cache_hit=True,
            user_id="player-7",
        )
    )
    clock.now = NOW
    rows.append(
        await tracker.log_api_call(ProviderType.OLLAMA, "llama3.2", "/api/chat", 300, 50, 2500, OperationType.OTHER)
    )
    return rows


def nearest_rank(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def test_the_guides_calls_and_the_dashboards_answers(ledger) -> None:
    tracker = UsageTracker(service=ledger, redis_client=object())
    deepseek, cerebras_ok, cerebras_failed, anthropic, ollama = asyncio.run(route_five_calls(tracker, ledger.clock))

    assert (cerebras_ok.user_id, cerebras_ok.task_type, cerebras_ok.feature) == ("user_123", "general", "qualification")
    assert cerebras_ok.metadata == {"endpoint": "/chat/completions", "cache_hit": False}
    assert (cerebras_ok.request_duration_ms, cerebras_ok.estimated_cost_exact) == (120, Decimal("0.000006"))
    assert (cerebras_failed.user_id, cerebras_failed.success) == (SYSTEM_USER, False)
    assert cerebras_failed.error_message == "upstream timeout"
    # 4,000 x $0.25/M + 800 x $1.25/M; a game task type is the event's task type
    assert (anthropic.task_type, anthropic.feature, anthropic.metadata["cache_hit"]) == ("npc_dialogue", None, True)
    assert anthropic.estimated_cost_exact == Decimal("0.002")
    assert (ollama.model, ollama.price_rule, ollama.estimated_cost_exact) == ("ollama/llama3.2", "free_local", 0)
    assert deepseek.estimated_cost_exact == Decimal("0.0007")  # 1,000 x $0.28/M + 1,000 x $0.42/M

    # The dashboard's ranges, naive as datetime.utcnow() gives them.
    week = (datetime(2026, 11, 17, 12, 0), datetime(2026, 11, 24, 12, 0))
    costs = tracker.get_cost_by_provider(start_date=week[0], end_date=week[1])
    assert costs == {"anthropic": 0.002, "deepseek": 0.0007, "cerebras": 0.000012, "ollama": 0.0}
    assert list(costs) == ["anthropic", "deepseek", "cerebras", "ollama"]
    assert sum(costs.values()) == pytest.approx(0.002712)
    assert "deepseek" not in tracker.get_cost_by_provider(datetime(2026, 11, 23, 12), datetime(2026, 11, 24, 12))

    hours = tracker.get_aggregates(datetime(2026, 11, 24, 10), datetime(2026, 11, 24, 13), interval="hour")
    assert [(p["start"], p["requests"], p["failed_requests"], p["tokens"]) for p in hours] == [
        ("2026-11-24T10:00:00Z", 2, 1, 600),
        ("2026-11-24T11:00:00Z", 1, 0, 4800),
        ("2026-11-24T12:00:00Z", 1, 0, 350),
    ]
    assert [Decimal(p["cost_usd"]) for p in hours] == [Decimal("0.000012"), Decimal("0.002"), 0]
    assert [p["mean_latency_ms"] for p in hours] == [1560, 900, 2500]
    days = tracker.get_aggregates(datetime(2026, 11, 22), datetime(2026, 11, 25), provider=ProviderType("deepseek"))
    assert [(p["start"][:10], p["requests"], Decimal(p["cost_usd"])) for p in days] == [
        ("2026-11-22", 1, Decimal("0.0007")), ("2026-11-23", 0, 0), ("2026-11-24", 0, 0),
    ]  # fmt: skip

    latencies = {"all": [400, 120, 3000, 900, 2500], ProviderType.CEREBRAS: [120, 3000]}
    for provider, values in latencies.items():
        wanted = None if provider == "all" else provider
        percentiles = tracker.get_latency_percentiles(start_date=week[0], end_date=week[1], provider=wanted)
        assert set(percentiles) == {"p50", "p95", "p99"}
        for name, q in (("p50", 50), ("p95", 95), ("p99", 99)):
            exact = nearest_rank(values, q)
            assert abs(percentiles[name] - exact) <= LATENCY_RELATIVE_ERROR * exact, (provider, name)
    assert tracker.get_latency_percentiles(*week, provider=ProviderType.GOOGLE) == {
        "p50": None,
        "p95": None,
        "p99": None,
    }

    assert tracker.get_success_rate(start_date=week[0], end_date=week[1]) == 80.0
    assert tracker.get_success_rate(*week, provider=ProviderType.CEREBRAS) == 50.0
    assert tracker.get_success_rate(*week, provider=ProviderType.GOOGLE) == 100.0  # no calls: nothing failed

    metrics = asyncio.run(tracker.get_real_time_metrics())  # the last 24 hours: the four calls of today
    assert metrics["total"]["requests"] == 4 and metrics["total"]["failed_requests"] == 1
    assert Decimal(metrics["total"]["cost_usd"]) == Decimal("0.002012")
    assert metrics["errors_by_provider"]["cerebras"] == {"requests": 2, "failed_requests": 1, "error_rate": 50.0}
    assert len(metrics["hours"]) == 24 and metrics["hours"][-1]["start"] == "2026-11-24T12:00:00Z"


def test_enums_cover_the_callers_providers_and_the_games_task_types() -> None:
    assert {"cerebras", "openrouter", "ollama", "anthropic", "deepseek", "openai", "google"} <= set(ProviderType)
    assert {"qualification", "other"} | {task.value for task in TaskType} <= set(OperationType)
    assert ProviderType("cerebras") is ProviderType.CEREBRAS  # the guide's route builds them from query strings


def test_plain_strings_work_and_unknown_operations_become_features(sqlite_ledger) -> None:
    tracker = UsageTracker(sqlite_ledger)
    row = asyncio.run(tracker.log_api_call("openrouter", "openai/gpt-4o", "/api/v1/chat", 10, 10, 5, "lead_scoring"))
    assert (row.provider, row.task_type, row.feature) == ("openrouter", TaskType.GENERAL, "lead_scoring")
    row = asyncio.run(tracker.log_api_call("openai", "gpt-4o", "/chat", 10, 10, 5, "combat_narration"))
    assert (row.task_type, row.feature) == (TaskType.COMBAT_NARRATION, None)
    # An id that already names the local runtime is kept as it is.
    row = asyncio.run(tracker.log_api_call(ProviderType.OLLAMA, "ollama/qwen3", "/api/chat", 1, 1, 5, "other"))
    assert (row.model, row.estimated_cost_exact) == ("ollama/qwen3", 0)


def test_bad_input_names_the_callers_arguments_and_stores_nothing(sqlite_ledger) -> None:
    tracker = UsageTracker(sqlite_ledger)
    with pytest.raises(ValidationFailed) as caught:
        asyncio.run(tracker.log_api_call(ProviderType.OPENAI, "gpt-4o", "/chat", -1, 10, -5, "x" * 101))
    assert {error.field for error in caught.value.fields} == {"prompt_tokens", "latency_ms", "operation_type"}
    assert sqlite_ledger.list_events().items == []
    with pytest.raises(ValidationFailed) as caught:
        tracker.get_aggregates(datetime(2026, 11, 1), datetime(2026, 11, 2), interval="week")
    assert [error.field for error in caught.value.fields] == ["interval"]
