"""``AIUsageLogger`` / ``AIPricingConfig`` called exactly as their guide calls them: on the class, with each
provider's own token convention (OpenAI, Anthropic with caching, Firecrawl credits), priced to the exact figure."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from services.compat import AIPricingConfig, AIUsageLogger, default_service, set_default_service
from services.errors import ValidationFailed
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


def log_the_guides_three_examples(ledger: UsageTrackingService) -> list:
    # Example 1: OpenAI chat completion; prompt_tokens is the whole prompt.
    openai_response = SimpleNamespace(
        id="chatcmpl-1", usage=SimpleNamespace(prompt_tokens=120_000, completion_tokens=35_000)
    )
    openai_row = AIUsageLogger.log_usage(
        user_id="player-42",
        model_name="gpt-4o",
        provider="openai",
        operation_type="npc_dialogue_generation",
        input_tokens=openai_response.usage.prompt_tokens,
        output_tokens=openai_response.usage.completion_tokens,
        request_metadata={"temperature": 0.7},
        response_metadata={"id": openai_response.id},
        service=ledger,
    )
    # Example 2: Anthropic with caching; input_tokens excludes the cache reads, passed as cached_tokens.
    usage = SimpleNamespace(input_tokens=2_000, output_tokens=500, cache_read_input_tokens=10_000)
    anthropic_row = AIUsageLogger.log_usage(
        user_id="player-42",
        model_name="claude-sonnet-4",
        provider="anthropic",
        operation_type="quest_writer",
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_tokens=getattr(usage, "cache_read_input_tokens", 0) or 0,
        request_metadata={"system_prompt_cached": True},
        service=ledger,
    )
    # Example 3: Firecrawl scrape; credits, no tokens.
    scrape = {"credits_used": 5, "markdown": "..."}
    firecrawl_row = AIUsageLogger.log_usage(
        user_id="player-42",
        model_name="firecrawl-scrape",
        provider="firecrawl",
        operation_type="lore_lookup",
        firecrawl_credits=scrape["credits_used"],
        request_metadata={"url": "https://example.com/wiki"},
        service=ledger,
    )
    return [openai_row, anthropic_row, firecrawl_row]


def test_the_guides_openai_anthropic_and_firecrawl_examples_are_priced_exactly(ledger) -> None:
    openai_row, anthropic_row, firecrawl_row = log_the_guides_three_examples(ledger)

    # 120K x $2.50/M + 35K x $10/M
    assert (openai_row.tokens_input, openai_row.tokens_output, openai_row.tokens_cached) == (120_000, 35_000, 0)
    assert openai_row.estimated_cost_exact == Decimal("0.65") and openai_row.platform_credits == 65
    assert openai_row.feature == "npc_dialogue_generation" and openai_row.provider == "openai"
    assert openai_row.metadata == {"request_metadata": {"temperature": 0.7}, "response_metadata": {"id": "chatcmpl-1"}}

    # The ledger's prompt is the whole one: 2,000 uncached + 10,000 cache reads;
    # 2K x $3/M + 10K x $0.30/M + 500 x $15/M = 0.006 + 0.003 + 0.0075
    assert (anthropic_row.tokens_input, anthropic_row.tokens_cached, anthropic_row.tokens_output) == (
        12_000,
        10_000,
        500,
    )
    assert anthropic_row.price_model_id == "anthropic/claude-sonnet-4"
    assert anthropic_row.estimated_cost_exact == Decimal("0.0165") and anthropic_row.platform_credits == 1

    # 5 credits x $0.00083
    assert (firecrawl_row.credits, firecrawl_row.tokens_input, firecrawl_row.tokens_output) == (5, 0, 0)
    assert firecrawl_row.estimated_cost_exact == Decimal("0.00415") and firecrawl_row.platform_credits == 0
    assert firecrawl_row.provider == "firecrawl" and firecrawl_row.feature == "lore_lookup"

    # The guide's queries, on the class.
    assert AIUsageLogger.get_user_total_credits("player-42", service=ledger) == 65 + 1 + 0
    day = AIUsageLogger.get_usage_by_date_range("player-42", date(2026, 11, 24), date(2026, 11, 24), service=ledger)
    assert day.total_requests == 3 and day.estimated_cost_exact == Decimal("0.67065")
    assert day.total_input_tokens == 132_000 and day.total_cached_tokens == 10_000 and day.total_credits == 5
    by_model = AIUsageLogger.get_usage_by_model("player-42", "claude-sonnet-4", service=ledger)
    assert by_model.total_requests == 1 and by_model.estimated_cost_exact == Decimal("0.0165")


def test_pricing_config_returns_usd_equal_to_what_the_logger_charges(sqlite_ledger) -> None:
    assert AIPricingConfig.calculate_cost("gpt-4o", 120_000, 35_000, service=sqlite_ledger) == 0.65
    assert AIPricingConfig.calculate_cost("claude-sonnet-4", 2_000, 500, service=sqlite_ledger) == 0.0135
    assert AIPricingConfig.calculate_firecrawl_cost(5, service=sqlite_ledger) == 0.00415
    assert AIPricingConfig.calculate_firecrawl_cost(1_000, service=sqlite_ledger) == 0.83
    rows = log_the_guides_three_examples(sqlite_ledger)
    assert rows[0].estimated_cost == AIPricingConfig.calculate_cost("gpt-4o", 120_000, 35_000, service=sqlite_ledger)
    assert rows[2].estimated_cost == AIPricingConfig.calculate_firecrawl_cost(5, service=sqlite_ledger)


def test_only_anthropic_adds_the_cached_tokens_to_the_prompt(sqlite_ledger) -> None:
    # OpenAI's prompt_tokens already counts its cached tokens (prompt_tokens_details.cached_tokens).
    row = AIUsageLogger.log_usage(
        "p1", "gpt-4o", "openai", "chat", input_tokens=1_000, output_tokens=0, cached_tokens=400, service=sqlite_ledger
    )
    assert (row.tokens_input, row.tokens_cached) == (1_000, 400)
    # 600 x $2.50/M + 400 x $1.25/M
    assert row.estimated_cost_exact == Decimal("0.002")
    row = AIUsageLogger.log_usage(
        "p1", "claude-sonnet-4", "Anthropic", "chat", 1_000, 0, cached_tokens=400, service=sqlite_ledger
    )
    assert (row.tokens_input, row.tokens_cached) == (1_400, 400)


def test_positional_arguments_keep_the_guides_order(sqlite_ledger) -> None:
    row = AIUsageLogger.log_usage(
        "p2", "gpt-4o", "openai", "summary", 1_000, 100, {"a": 1}, {"b": 2}, 0, None, service=sqlite_ledger
    )
    assert (row.user_id, row.model, row.feature, row.tokens_input, row.tokens_output) == (
        "p2", "gpt-4o", "summary", 1_000, 100,
    )  # fmt: skip
    assert row.metadata == {"request_metadata": {"a": 1}, "response_metadata": {"b": 2}}


def test_bad_input_names_the_callers_arguments_and_stores_nothing(sqlite_ledger) -> None:
    with pytest.raises(ValidationFailed) as caught:
        AIUsageLogger.log_usage("p3", "", "openai", "x" * 101, input_tokens=10, output_tokens=-1, service=sqlite_ledger)
    assert {error.field for error in caught.value.fields} == {"model_name", "operation_type", "output_tokens"}
    with pytest.raises(ValidationFailed) as caught:
        AIUsageLogger.log_usage("p3", "gpt-4o", "firecrawl", "scrape", firecrawl_credits=-5, service=sqlite_ledger)
    assert [error.field for error in caught.value.fields] == ["firecrawl_credits"]
    assert sqlite_ledger.list_events().items == []


def test_a_naive_datetime_range_is_read_as_utc_days(sqlite_ledger) -> None:
    log_the_guides_three_examples(sqlite_ledger)
    usage = AIUsageLogger.get_usage_by_date_range(
        "player-42", datetime(2026, 11, 1, 0, 0), datetime(2026, 11, 24, 23, 59), service=sqlite_ledger
    )
    assert (usage.start, usage.end, usage.total_requests) == (date(2026, 11, 1), date(2026, 11, 24), 3)


def test_called_without_a_service_the_logger_uses_the_ledger_built_from_settings(db_path: Path) -> None:
    set_default_service(None)
    try:
        row = AIUsageLogger.log_usage("p4", "gpt-4o", "openai", "chat", input_tokens=1_000, output_tokens=1_000)
        assert AIUsageLogger.get_user_total_credits("p4") == row.platform_credits
    finally:
        default_service().close()
        set_default_service(None)
    store = SQLiteUsageStore(db_path)  # the file AI_USAGE_DB_PATH names
    try:
        assert store.get_event(row.request_id) == row
    finally:
        store.close()
