"""The ledger as the game backend uses it: log, retry, summarise, and the rate limiter's fail-open count."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from models.ai_usage import LogStatus, TaskType, UsageEvent
from services.errors import NotFound, StoreError, ValidationFailed
from services.pricing import PriceBook
from services.rollup_maintenance import verify
from services.store.sqlite_store import SQLiteUsageStore
from services.usage_tracking_service import (
    UsageTrackingService,
    estimate_cost_for_model,
    get_model_cost_info,
)

NOW = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def price_book() -> PriceBook:
    return PriceBook.load()


@pytest.fixture
def service(sqlite_store: SQLiteUsageStore, price_book: PriceBook) -> UsageTrackingService:
    return UsageTrackingService(sqlite_store, price_book, clock=lambda: NOW)


def call(service: UsageTrackingService, **overrides):  # type: ignore[no-untyped-def]
    fields = {"user_id": "player-1", "model": "anthropic/claude-3.5-sonnet", "tokens_input": 1000, "tokens_output": 500}
    fields.update(overrides)
    return service.log_usage(**fields)


def test_log_usage_prices_the_event_exactly_from_the_contracted_table(service: UsageTrackingService) -> None:
    result = call(service, task_type="npc_dialogue")
    assert result.status is LogStatus.STORED and not result.duplicate
    log = result.log
    # 1000 × 0.003/1K + 500 × 0.015/1K = 0.003 + 0.0075
    assert log.estimated_cost_exact == Decimal("0.0105")
    assert log.estimated_cost == 0.0105
    assert log.cost_nano == 10_500_000
    assert log.platform_credits == 1
    assert log.tokens_total == 1500
    assert log.provider == "anthropic"
    assert log.price_model_id == "anthropic/claude-3.5-sonnet" and not log.price_is_fallback
    assert log.timestamp == NOW and log.request_id and len(log.log_id) == 32


def test_provider_is_inferred_from_a_provider_prefixed_model_id(service: UsageTrackingService) -> None:
    assert call(service, model="openai/gpt-4o").log.provider == "openai"
    assert call(service, model="claude-3-5-sonnet-20241022").log.provider == "anthropic"


def test_a_retry_with_the_same_request_id_is_a_duplicate_and_changes_no_total(service: UsageTrackingService) -> None:
    first = call(service, request_id="retry-me")
    again = call(service, request_id="retry-me")
    assert again.status is LogStatus.DUPLICATE and again.duplicate
    assert again.log == first.log
    daily = service.get_daily_usage("player-1")
    assert daily.total_requests == 1
    assert daily.estimated_cost_exact == first.log.estimated_cost_exact


def test_unknown_model_is_priced_by_the_default_flagged_and_counted(service: UsageTrackingService) -> None:
    log = call(service, model="mystery-model-9000", tokens_input=1000, tokens_output=1000).log
    assert log.price_is_fallback
    assert log.estimated_cost_exact == Decimal("0.006")  # 0.001 + 0.005 per 1K
    assert service.get_daily_usage("player-1").unpriced_requests == 1
    assert service.get_global_daily_usage().unpriced_requests == 1


def test_daily_usage_breaks_down_by_task_and_counts_failures(service: UsageTrackingService) -> None:
    call(service, task_type="combat_narration")
    call(service, task_type="combat_narration", success=False, error_message="timeout")
    call(service, task_type="quest_selection", tokens_cached=400)
    call(service, user_id="someone-else")
    daily = service.get_daily_usage("player-1", date(2026, 11, 23))
    assert daily.total_requests == 3 and daily.failed_requests == 1
    assert daily.requests_by_task == {
        "story_progression": 0,
        "combat_narration": 2,
        "quest_selection": 1,
        "npc_dialogue": 0,
        "general": 0,
    }
    assert daily.total_cached_tokens == 400
    assert sum(daily.cost_by_task_exact.values()) == daily.estimated_cost_exact
    assert daily.estimated_cost == float(daily.estimated_cost_exact)


def test_days_are_utc_days_whatever_the_callers_timezone(service: UsageTrackingService) -> None:
    tokyo = timezone(timedelta(hours=9))
    # 08:00 in Tokyo on the 23rd is 23:00 UTC on the 22nd.
    call(service, timestamp=datetime(2026, 11, 23, 8, 0, tzinfo=tokyo))
    assert service.get_daily_usage("player-1", date(2026, 11, 22)).total_requests == 1
    assert service.get_daily_usage("player-1", date(2026, 11, 23)).total_requests == 0


def test_a_clock_in_another_zone_stamps_events_in_utc_on_both_ingest_paths(
    sqlite_store: SQLiteUsageStore, price_book: PriceBook
) -> None:
    # 01:30 in Athens on 1 March is 23:30 UTC on 29 February: both the event and its rollups say the 29th.
    athens = datetime(2028, 3, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    service = UsageTrackingService(sqlite_store, price_book, clock=lambda: athens)
    single = call(service, request_id="one").log
    batch = service.log_usage_batch([{"request_id": "two", "user_id": "player-1", "model": "gpt-4o"}])[0].log
    for logged in (single, batch):
        assert logged.timestamp == datetime(2028, 2, 29, 23, 30, tzinfo=UTC)
        assert logged.timestamp.utcoffset() == timedelta(0)
    assert service.get_daily_usage("player-1", date(2028, 2, 29)).total_requests == 2
    assert service.get_user_request_count_today("player-1") == 2
    assert verify(service).clean


def test_a_summary_day_given_as_a_datetime_is_its_utc_day(service: UsageTrackingService) -> None:
    call(service)
    tokyo_morning = datetime(2026, 11, 24, 8, 0, tzinfo=timezone(timedelta(hours=9)))  # 23:00 UTC on the 23rd
    assert service.get_daily_usage("player-1", tokyo_morning).total_requests == 1
    assert service.get_total_daily_cost(NOW) == service.get_total_daily_cost() > 0
    assert service.get_global_daily_usage(NOW).total_requests == 1
    for bad in (datetime(2026, 11, 23, 12, 0), "2026-11-23"):
        with pytest.raises(ValidationFailed) as info:
            service.get_daily_usage("player-1", bad)  # type: ignore[arg-type]
        assert info.value.fields[0].field == "date"


def test_monthly_cost_sums_the_month_and_rejects_a_bad_month(service: UsageTrackingService) -> None:
    call(service, timestamp=datetime(2026, 11, 1, tzinfo=UTC))
    call(service, timestamp=datetime(2026, 11, 23, tzinfo=UTC))
    call(service, timestamp=datetime(2026, 10, 31, 23, 59, tzinfo=UTC))
    monthly = service.get_monthly_cost("player-1", 2026, 11)
    assert monthly.total_requests == 2
    assert monthly.estimated_cost_exact == Decimal("0.021")
    for month in (0, 13):
        with pytest.raises(ValidationFailed) as info:
            service.get_monthly_cost("player-1", 2026, month)
        assert info.value.fields[0].field == "month"


def test_global_daily_cost_is_everyones_cost_of_the_utc_day(service: UsageTrackingService) -> None:
    call(service, user_id="a")
    call(service, user_id="b", model="openai/gpt-4o")
    call(service, user_id="c", timestamp=NOW - timedelta(days=1))
    expected = service.get_daily_usage("a").estimated_cost_exact + service.get_daily_usage("b").estimated_cost_exact
    assert service.get_total_daily_cost() == float(expected)
    usage = service.get_global_daily_usage(NOW.date())
    assert usage.total_requests == 2
    assert set(usage.cost_by_provider) == {"anthropic", "openai"}
    assert sum(b.estimated_cost_exact for b in usage.cost_by_model.values()) == usage.estimated_cost_exact


def test_summaries_stay_exact_past_a_thousand_events(service: UsageTrackingService) -> None:
    events = [
        {"user_id": "whale", "model": "anthropic/claude-3-haiku", "tokens_input": 7, "tokens_output": 3}
        for _ in range(1500)
    ]
    service.log_usage_batch(events[:1000])
    service.log_usage_batch(events[1000:])
    daily = service.get_daily_usage("whale")
    assert daily.total_requests == 1500
    # each: 7 × 0.00025/1K + 3 × 0.00125/1K = 0.00000175 + 0.00000375 = 0.0000055
    assert daily.estimated_cost_exact == Decimal("0.0000055") * 1500
    assert service.get_user_request_count_today("whale") == 1500


def test_request_count_fails_open_with_a_warning(price_book: PriceBook, captured_logs: list[dict]) -> None:
    class BrokenStore(SQLiteUsageStore):
        def get_rollups(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise StoreError("disk on fire")

    service = UsageTrackingService(BrokenStore(":memory:"), price_book, clock=lambda: NOW)
    assert service.get_user_request_count_today("player-1") == 0
    count = service.request_count_today("player-1")
    assert count.degraded and count.count == 0
    warnings = [e for e in captured_logs if e["event"] == "rate_limit.count_degraded"]
    assert warnings and warnings[0]["log_level"] == "warning" and warnings[0]["user_id"] == "player-1"


def test_batch_stores_valid_events_and_names_the_field_of_each_rejected_one(service: UsageTrackingService) -> None:
    results = service.log_usage_batch(
        [
            {"user_id": "p", "model": "gpt-4o", "request_id": "b1"},
            {"user_id": "", "model": "gpt-4o"},
            {"user_id": "p", "model": "gpt-4o", "request_id": "b1"},
            UsageEvent(user_id="p", model="gpt-4o", tokens_output=5),
            {"user_id": "p", "model": "gpt-4o", "timestamp": "0001-01-01T00:00:00+01:00"},
        ]
    )
    assert [r.status for r in results] == [
        LogStatus.STORED,
        LogStatus.REJECTED,
        LogStatus.DUPLICATE,
        LogStatus.STORED,
        LogStatus.REJECTED,
    ]
    assert results[1].errors[0].field == "user_id"
    assert results[4].errors[0].field == "timestamp"
    assert service.get_daily_usage("p").total_requests == 2


def test_batch_larger_than_the_limit_is_refused_whole(service: UsageTrackingService) -> None:
    with pytest.raises(ValidationFailed) as info:
        service.log_usage_batch([{"user_id": "p", "model": "m"}] * 1001)
    assert info.value.fields[0].field == "events"
    assert service.get_daily_usage("p").total_requests == 0


def test_date_range_summary_and_session_model_and_credit_queries(service: UsageTrackingService) -> None:
    for days_ago in range(5):
        call(service, timestamp=NOW - timedelta(days=days_ago), session_id="sess-1", task_type="story_progression")
    call(service, model="openai/gpt-4o", session_id="sess-2", tokens_input=100_000, tokens_output=100_000)
    usage = service.get_usage_by_date_range("player-1", date(2026, 11, 20), date(2026, 11, 22))
    assert usage.total_requests == 3 and len(usage.by_day) == 3
    summary = service.get_usage_summary("player-1", days=2)
    assert summary.total_requests == 3 and summary.by_task["story_progression"].requests == 2
    assert service.get_session_usage("sess-1").total_requests == 5
    assert service.get_usage_by_model("player-1", "openai/gpt-4o").total_requests == 1
    assert service.get_user_total_credits("player-1") == sum(log.platform_credits for log in service.iter_events())
    with pytest.raises(NotFound):
        service.get_session_usage("no-such-session")
    with pytest.raises(ValidationFailed):
        service.get_usage_by_date_range("player-1", date(2026, 11, 22), date(2026, 11, 20))


def test_iter_events_streams_every_event_once(service: UsageTrackingService) -> None:
    service.log_usage_batch([{"user_id": f"u{i}", "model": "gpt-4o"} for i in range(250)])
    ids = [log.request_id for log in service.iter_events(page_size=100)]
    assert len(ids) == len(set(ids)) == 250


def test_cost_helpers_work_without_a_store() -> None:
    assert estimate_cost_for_model("anthropic/claude-3-opus", 1000, 1000) == 0.09
    info = get_model_cost_info("claude-3-5-sonnet-latest")
    assert (info["input"], info["output"]) == (0.003, 0.015)


def test_every_event_log_line_binds_the_request_identity(
    service: UsageTrackingService, captured_logs: list[dict]
) -> None:
    call(service, request_id="r-log", task_type="general")
    line = next(e for e in captured_logs if e["event"] == "usage.logged")
    assert line["request_id"] == "r-log" and line["user_id"] == "player-1"
    assert line["model"] == "anthropic/claude-3.5-sonnet" and line["task_type"] == TaskType.GENERAL.value
