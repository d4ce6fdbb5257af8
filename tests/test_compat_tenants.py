"""The tenant-centred facades called as their callers call them: ``AIUsageTracker`` (administration = tenant,
template type = feature, a token total priced at the input rate and flagged) and ``track_usage`` (the stored event,
its tenant's daily and monthly rollups by provider)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from services.compat import SYSTEM_USER, AIUsageTracker, track_usage
from services.compat.tracker import TOTAL_ONLY
from services.errors import StoreError, ValidationFailed
from services.pricing import PriceBook
from services.store.sqlite_store import SQLiteUsageStore
from services.usage_tracking_service import UsageTrackingService
from tests.conftest import BACKENDS, ledger_on

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS[:2])  # SQLite and one Appwrite version: the facade is the same code on both
def ledger(request: pytest.FixtureRequest, tmp_path: Path, price_book: PriceBook) -> Iterator[UsageTrackingService]:
    yield from ledger_on(request.param, tmp_path, price_book, lambda: NOW)


@pytest.fixture
def sqlite_ledger(sqlite_store: SQLiteUsageStore, price_book: PriceBook) -> UsageTrackingService:
    return UsageTrackingService(sqlite_store, price_book, clock=lambda: NOW)


# -- AIUsageTracker ----------------------------------------------------------------------------------------


def test_ai_usage_tracker_logs_per_administration_and_feature_and_summarises_them(ledger) -> None:
    tracker = AIUsageTracker(ledger)
    row = tracker.log_ai_request(
        administration="GoodwinSolutions",
        template_type="str_invoice_nl",
        tokens_used=1500,
        model_used="deepseek/deepseek-chat",
    )
    tracker.log_ai_request("GoodwinSolutions", "str_invoice_nl", 1_000_000, "anthropic/claude-3.5-sonnet")
    tracker.log_ai_request("GoodwinSolutions", "btw_aangifte", 2500, "meta-llama/llama-3.2-3b-instruct:free")
    tracker.log_ai_request("OtherAdministration", "str_invoice_nl", 700, "deepseek/deepseek-chat")

    # The total is priced at the input rate ($0.28/M) and the row says so.
    assert (row.tenant_id, row.user_id, row.feature) == ("GoodwinSolutions", SYSTEM_USER, "str_invoice_nl")
    assert (row.tokens_input, row.tokens_output, row.metadata) == (1500, 0, TOTAL_ONLY)
    assert row.estimated_cost_exact == Decimal("0.00042")

    summary = tracker.get_usage_summary("GoodwinSolutions", days=30)
    assert summary == {
        "administration": "GoodwinSolutions",
        "period_days": 30,
        "total_requests": 3,
        "total_tokens": 1_004_000,
        "total_cost": 3.00042,  # 1M x $3/M + 1,500 x $0.28/M + a free model
        "total_cost_exact": Decimal("3.00042"),
        "by_feature": {
            "str_invoice_nl": {"requests": 2, "tokens": 1_001_500, "cost": 3.00042, "cost_exact": Decimal("3.00042")},
            "btw_aangifte": {"requests": 1, "tokens": 2500, "cost": 0.0, "cost_exact": Decimal("0")},
        },
    }
    other = tracker.get_usage_summary("OtherAdministration")
    assert (other["total_requests"], other["total_cost_exact"]) == (1, Decimal("0.000196"))


def test_the_summary_covers_the_last_days_only(sqlite_ledger) -> None:
    tracker = AIUsageTracker(sqlite_ledger)
    tracker.log_ai_request("Acme", "old", 1000, "deepseek/deepseek-chat")
    sqlite_ledger.log_usage(
        user_id=SYSTEM_USER,
        tenant_id="Acme",
        model="deepseek/deepseek-chat",
        feature="older",
        tokens_input=1000,
        timestamp=NOW - timedelta(days=7),
    )
    assert tracker.get_usage_summary("Acme", days=7)["total_requests"] == 1
    assert set(tracker.get_usage_summary("Acme", days=8)["by_feature"]) == {"old", "older"}
    assert tracker.get_usage_summary("Nobody") == {
        "administration": "Nobody",
        "period_days": 30,
        "total_requests": 0,
        "total_tokens": 0,
        "total_cost": 0.0,
        "total_cost_exact": Decimal("0"),
        "by_feature": {},
    }


def test_a_failure_to_log_is_logged_and_swallowed(sqlite_ledger, captured_logs, monkeypatch) -> None:
    tracker = AIUsageTracker(sqlite_ledger)
    assert tracker.log_ai_request("Acme", "str_invoice_nl", -5, "deepseek/deepseek-chat") is None

    def store_down(logs):  # type: ignore[no-untyped-def]
        raise StoreError("the store could not answer")

    monkeypatch.setattr(sqlite_ledger.store, "record", store_down)
    assert tracker.log_ai_request("Acme", "str_invoice_nl", 10, "deepseek/deepseek-chat") is None
    failures = [line for line in captured_logs if line["event"] == "compat.ai_usage_tracker.log_failed"]
    assert [line["log_level"] for line in failures] == ["error", "error"]
    assert "tokens_input" in failures[0]["error"] and "StoreError" in failures[1]["error"]
    assert failures[0]["administration"] == "Acme" and failures[0]["template_type"] == "str_invoice_nl"
    monkeypatch.undo()
    assert sqlite_ledger.list_events().items == []


# -- track_usage -------------------------------------------------------------------------------------------


def test_track_usage_returns_the_stored_event_and_feeds_its_tenants_day_and_month(ledger) -> None:
    event = track_usage(ledger, "tenant-a", "user-1", "kb-9", "openai", "gpt-4o", 1000, 200)
    late = track_usage(
        db := ledger,
        tenant_id="tenant-a",
        user_id="user-2",
        kb_id="kb-3",
        provider="gemini",
        model="gemini-2.5-flash",
        prompt_tokens=10_000,
        completion_tokens=1_000,
        request_timestamp=datetime(2026, 11, 23, 22, 30),  # naive, as datetime.utcnow() wrote it: UTC
    )
    track_usage(db, "tenant-b", "user-1", "kb-9", "openai", "gpt-4o", 1000, 200)

    # 1,000 x $2.50/M + 200 x $10/M
    assert (event.tenant_id, event.user_id, event.metadata) == ("tenant-a", "user-1", {"kb_id": "kb-9"})
    assert (event.tokens_total, event.estimated_cost_exact, event.timestamp) == (1200, Decimal("0.0045"), NOW)
    # 10,000 x $0.30/M + 1,000 x $2.50/M
    assert late.timestamp == datetime(2026, 11, 23, 22, 30, tzinfo=UTC) and late.provider == "gemini"
    assert late.estimated_cost_exact == Decimal("0.0055")

    today = ledger.get_tenant_daily_usage("tenant-a", date(2026, 11, 24))
    assert (today.total_requests, today.total_tokens) == (1, 1200)
    assert (today.requests_by_provider, today.cost_by_provider) == ({"openai": 1}, {"openai": Decimal("0.0045")})
    yesterday = ledger.get_tenant_daily_usage("tenant-a", date(2026, 11, 23))
    assert yesterday.requests_by_provider == {"gemini": 1}
    month = ledger.get_tenant_monthly_usage("tenant-a", 2026, 11)
    assert (month.total_requests, month.total_tokens, month.estimated_cost_exact) == (2, 12_200, Decimal("0.01"))
    assert month.requests_by_provider == {"gemini": 1, "openai": 1}
    assert month.cost_by_provider == {"gemini": Decimal("0.0055"), "openai": Decimal("0.0045")}
    assert ledger.get_tenant_monthly_usage("tenant-b", 2026, 11).requests_by_provider == {"openai": 1}


def test_track_usage_keeps_an_aware_timestamp_and_names_bad_arguments(sqlite_ledger) -> None:
    paris = timezone(timedelta(hours=1))
    event = track_usage(
        sqlite_ledger, "t", "u", "kb", "openai", "gpt-4o", 10, 10, datetime(2026, 11, 24, 0, 30, tzinfo=paris)
    )
    assert event.timestamp == datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
    with pytest.raises(ValidationFailed) as caught:
        track_usage(sqlite_ledger, "t", "u", "kb", "openai", "gpt-4o", -1, "many")
    assert {error.field for error in caught.value.fields} == {"prompt_tokens", "completion_tokens"}
    with pytest.raises(ValidationFailed) as caught:  # more than 5 minutes ahead of the ledger's clock
        track_usage(sqlite_ledger, "t", "u", "kb", "openai", "gpt-4o", 1, 1, datetime(2026, 11, 24, 12, 6))
    assert [error.field for error in caught.value.fields] == ["request_timestamp"]
    assert [e.request_id for e in sqlite_ledger.list_events().items] == [event.request_id]
