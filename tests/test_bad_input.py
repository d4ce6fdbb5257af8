"""Bad input gets an error naming the field and the rule, and nothing is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.errors import ValidationFailed
from services.pricing import PriceBook
from services.store.sqlite_store import SQLiteUsageStore
from services.usage_tracking_service import UsageTrackingService

NOW = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)
GOOD = {"user_id": "player-1", "model": "gpt-4o", "tokens_input": 10, "tokens_output": 5}


@pytest.fixture
def service(sqlite_store: SQLiteUsageStore) -> UsageTrackingService:
    return UsageTrackingService(sqlite_store, PriceBook.load(), clock=lambda: NOW)


CASES = [
    ({"user_id": ""}, "user_id", "at least 1 character"),
    ({"user_id": "   "}, "user_id", "at least 1 character"),
    ({"user_id": "x" * 129}, "user_id", "at most 128"),
    ({"model": ""}, "model", "at least 1 character"),
    ({"model": "m" * 201}, "model", "at most 200"),
    ({"tokens_input": -1}, "tokens_input", "greater than or equal to 0"),
    ({"tokens_output": 1.5}, "tokens_output", "integer"),
    ({"tokens_output": "12"}, "tokens_output", "integer"),
    ({"tokens_input": True}, "tokens_input", "integer"),
    ({"tokens_input": 10_000_001}, "tokens_input", "less than or equal to 10000000"),
    ({"credits": -3}, "credits", "greater than or equal to 0"),
    ({"task_type": "dancing"}, "task_type", "story_progression"),
    ({"timestamp": datetime(2026, 11, 23, 12, 0)}, "timestamp", "timezone-aware"),
    ({"timestamp": "2026-11-23T12:00:00"}, "timestamp", "timezone-aware"),
    ({"timestamp": 1_790_000_000}, "timestamp", "not a number"),
    ({"timestamp": "1790000000"}, "timestamp", "not a number"),  # pydantic would read Unix seconds off the text
    ({"timestamp": "1763899200000"}, "timestamp", "not a number"),  # or milliseconds
    ({"timestamp": "0001-01-01T00:00:00+01:00"}, "timestamp", "out of range"),
    ({"timestamp": datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-23)))}, "timestamp", "out of range"),
    ({"timestamp": datetime(2027, 1, 1, tzinfo=UTC)}, "timestamp", "in the future"),
    ({"timestamp": datetime(1969, 12, 31, tzinfo=UTC)}, "timestamp", "1970"),
    ({"metadata": {"blob": "x" * 5000}}, "metadata", "4096 bytes"),
    ({"metadata": {"f": float("nan")}}, "metadata", "JSON"),
    ({"error_message": "e" * 2001}, "error_message", "at most 2000"),
    ({"session_id": "s" * 129}, "session_id", "at most 128"),
    (
        {"tokens_input": 10, "tokens_cached": 8, "tokens_cache_write": 5},
        "tokens_cached",
        "must not exceed tokens_input",
    ),
    ({"tokens_output": 5, "tokens_reasoning": 6}, "tokens_reasoning", "must not exceed tokens_output"),
    ({"request_duration_ms": -5}, "request_duration_ms", "greater than or equal to 0"),
    ({"colour": "blue"}, "colour", "unknown field"),
    ({"error_message": '{"method": "increment", "values": [1]}'}, "error_message", "JSON object"),
    ({"session_id": '{"method":"toggle"}'}, "session_id", "JSON object"),
]


@pytest.mark.parametrize(("override", "field", "rule"), CASES, ids=[f"{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_bad_field_is_named_with_its_rule_and_nothing_is_stored(
    service: UsageTrackingService, override: dict, field: str, rule: str
) -> None:
    with pytest.raises(ValidationFailed) as info:
        service.log_usage(**{**GOOD, **override})
    errors = {e.field: e.message for e in info.value.fields}
    assert field in errors, errors
    assert rule in errors[field]
    assert field in str(info.value)
    assert list(service.iter_events()) == []
    assert service.get_total_daily_cost() == 0.0


def test_every_bad_field_is_reported_at_once(service: UsageTrackingService) -> None:
    with pytest.raises(ValidationFailed) as info:
        service.log_usage(user_id="", model="gpt-4o", tokens_input=-1, task_type="nope")
    assert {e.field for e in info.value.fields} == {"user_id", "tokens_input", "task_type"}
