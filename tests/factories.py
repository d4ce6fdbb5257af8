"""Build stored-shape usage logs for store tests without going through pricing."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from models.ai_usage import FREE_PRICE_RULES, AIUsageLog, TaskType, log_id_for
from models.counters import Counters
from models.latency import LATENCY_COUNTERS, latency_bucket
from models.usage_kinds import COST_COUNTERS, COST_PARTS, KIND_NAMES
from services.pricing import PriceBook, nano_to_usd
from services.store.rollups import RollupKey, rollup_keys
from services.store.sqlite_store import SQLiteUsageStore
from services.usage_tracking_service import UsageTrackingService

_ids = itertools.count(1)
BASE_TIME = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def make_log(**overrides: Any) -> AIUsageLog:
    """A valid ``AIUsageLog``; any field may be overridden. Cost fields stay consistent with ``cost_nano``."""
    request_id = overrides.pop("request_id", None) or f"req-{next(_ids)}"
    cost_nano = overrides.pop("cost_nano", 1_234_567)
    exact = nano_to_usd(cost_nano)
    tokens_input = overrides.pop("tokens_input", 1200)
    tokens_output = overrides.pop("tokens_output", 300)
    fields: dict[str, Any] = {
        "log_id": log_id_for(request_id, overrides.get("tenant_id")),
        "request_id": request_id,
        "user_id": "player-1",
        "model": "anthropic/claude-3.5-sonnet",
        "provider": "anthropic",
        "task_type": TaskType.NPC_DIALOGUE,
        "tokens_input": tokens_input,
        "tokens_output": tokens_output,
        "tokens_total": tokens_input + tokens_output,
        "timestamp": BASE_TIME,
        "cost_nano": cost_nano,
        "cost_nano_by_kind": {"tokens_input": cost_nano} if cost_nano else {},
        "estimated_cost": float(exact),
        "estimated_cost_exact": exact,
        "price_model_id": "anthropic/claude-3.5-sonnet",
        "price_is_fallback": False,
        "platform_credits": int(exact * 100),
    }
    fields.update(overrides)
    return AIUsageLog(**fields)


_COST_COLUMNS = tuple(zip(COST_PARTS, COST_COUNTERS, strict=True))


def event_counters(log: AIUsageLog) -> Counters:
    """What one event adds to each counter, written out by name: the oracle the stores' sparse
    ``moved_counters`` are checked against."""
    duration = log.request_duration_ms
    values = {
        "requests": 1,
        "failed_requests": 0 if log.success else 1,
        "unpriced_requests": 1 if log.price_is_fallback else 0,
        **{name: getattr(log, name) for name in KIND_NAMES},
        "cost_nano": log.cost_nano,
        "platform_credits": log.platform_credits,
        "free_requests": 1 if log.price_rule in FREE_PRICE_RULES else 0,
        "other_host_requests": 1 if log.price_rule == "other_host" else 0,
        **{
            counter: log.cost_nano_by_kind.get(part, 0) for part, counter in zip(COST_PARTS, COST_COUNTERS, strict=True)
        },
    }
    if duration is not None:
        values.update(
            {"timed_requests": 1, "latency_ms_total": duration, LATENCY_COUNTERS[latency_bucket(duration)]: 1}
        )
    return Counters(**values)


def expected_rollups(logs: Iterable[AIUsageLog]) -> dict[RollupKey, Counters]:
    """Rollups recomputed from scratch from the distinct events (first occurrence of an idempotency key wins)."""
    seen: set[str] = set()
    totals: dict[RollupKey, Counters] = {}
    for log in logs:
        if log.log_id in seen:
            continue
        seen.add(log.log_id)
        for key in rollup_keys(log):
            totals[key] = totals.get(key, Counters()) + event_counters(log)
    return totals


def pinned_commands(
    db_path: Path, now: datetime, monkeypatch: pytest.MonkeyPatch, *modules: ModuleType
) -> Iterator[UsageTrackingService]:
    """A ledger on ``db_path`` whose clock is ``now``, and the CLI ``modules`` opening the same (their
    ``open_service`` patched), so a command's default ranges are the test's."""

    def pinned() -> UsageTrackingService:
        return UsageTrackingService(SQLiteUsageStore(db_path), PriceBook.load(), clock=lambda: now)

    @contextmanager
    def open_service(_settings: object) -> Iterator[UsageTrackingService]:
        service = pinned()
        try:
            yield service
        finally:
            service.close()

    for module in modules:
        monkeypatch.setattr(module, "open_service", open_service)
    service = pinned()
    yield service
    service.close()
