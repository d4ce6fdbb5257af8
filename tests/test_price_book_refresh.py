"""The 2026-11 price book refresh: new models priced from their sourced per-1M figures, and dated changes.

Every expected value is hand-computed from the per-1M figures in the entry's comment (tokens x $/1M / 1e6), in
integer nano-USD, so a typo in a per-1K string (off by 10x, a dropped digit) fails here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models.ai_usage import UsageEvent
from services.pricing import PriceBook, TokenCounts, cost_nano
from services.usage_events import EventPricer

BOOK = PriceBook.load()
# The refresh's "today"; fixed, so the tests do not drift as later dated versions come into force.
TODAY = datetime(2026, 11, 24, tzinfo=UTC)
NANO = 10**9


def nano(model: str, at: datetime, **counts: int) -> int:
    match = BOOK.lookup(model, at=at)
    assert match.rule == "book", f"{model} is not in the book (priced by {match.rule})"
    return cost_nano(match.entry, TokenCounts(**counts))


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "model_id"),
    [
        ("gpt-5.1", "openai/gpt-5.1"),
        ("gpt-5.1-2025-11-13", "openai/gpt-5.1"),
        ("gpt-5-1", "openai/gpt-5.1"),
        ("gpt-5.1-chat-latest", "openai/gpt-5.1"),
        ("gpt-5.2-pro-2025-12-11", "openai/gpt-5.2-pro"),
        ("gpt-5.6", "openai/gpt-5.6-sol"),
        ("o1-pro-2025-03-19", "openai/o1-pro"),
        ("o3-pro", "openai/o3-pro"),
        ("claude-opus-4-6", "anthropic/claude-opus-4.6"),
        ("claude-opus-4.6", "anthropic/claude-opus-4.6"),
        ("claude-opus-4-6-20260205", "anthropic/claude-opus-4.6"),
        ("anthropic/claude-opus-5", "anthropic/claude-opus-5"),
        ("claude-sonnet-4-6", "anthropic/claude-sonnet-4.6"),
        ("claude-opus-4-0", "anthropic/claude-opus-4"),
        ("gemini-3-pro-preview", "google/gemini-3-pro-preview"),
        ("models/gemini-3.1-flash-lite-preview", "google/gemini-3.1-flash-lite"),
        ("deepseek-v4-flash", "deepseek/deepseek-v4-flash"),
        ("mistral-large-2512", "mistral/mistral-large-2512"),
        ("magistral-medium-latest", "mistral/magistral-medium"),
        ("ministral-14b-2512", "mistral/ministral-14b-2512"),
    ],
)
def test_spellings_games_log_find_the_new_models(name: str, model_id: str) -> None:
    match = BOOK.lookup(name, at=TODAY)
    assert (match.entry.model_id, match.rule) == (model_id, "book")


def test_gpt_5_1_cached_input_and_output() -> None:
    # $1.25 in, $0.125 cached, $10 out per 1M: 6K x 1.25 + 4K x 0.125 + 2K x 10 = 0.0075 + 0.0005 + 0.02 USD
    assert nano("gpt-5.1", TODAY, tokens_input=10_000, tokens_cached=4_000, tokens_output=2_000) == 28_000_000


def test_gpt_5_4_whole_request_moves_to_the_long_tier_over_272k() -> None:
    # > 272K: $5 in, $22.50 out per 1M: 300K x 5 + 10K x 22.5 = 1.5 + 0.225 USD
    assert nano("gpt-5.4", TODAY, tokens_input=300_000, tokens_output=10_000) == 1_725_000_000
    # at 272K exactly the base tier holds: $2.50 in, $15 out
    assert nano("gpt-5.4", TODAY, tokens_input=272_000, tokens_output=10_000) == 830_000_000


def test_gemini_3_pro_preview_base_and_long_context() -> None:
    # $2 in, $12 out per 1M: 1K x 2 + 500 x 12 = 0.002 + 0.006 USD
    assert nano("gemini-3-pro-preview", TODAY, tokens_input=1_000, tokens_output=500) == 8_000_000
    # > 200K: $4 in, $0.40 cached, $18 out: 200K x 4 + 50K x 0.4 + 1K x 18 = 0.8 + 0.02 + 0.018 USD
    assert (
        nano("gemini-3-pro-preview", TODAY, tokens_input=250_000, tokens_cached=50_000, tokens_output=1_000)
        == 838_000_000
    )


def test_deepseek_v4_pro_prices_sub_cent_cache_hits_exactly() -> None:
    # $0.435 miss, $0.003625 hit, $0.87 out per 1M: 500K x 0.435 + 500K x 0.003625 + 100K x 0.87
    assert (
        nano("deepseek-v4-pro", TODAY, tokens_input=1_000_000, tokens_cached=500_000, tokens_output=100_000)
        == 306_312_500
    )


def test_claude_opus_4_6_keeps_the_long_context_surcharge_before_2026_03_13() -> None:
    counts = {"tokens_input": 300_000, "tokens_cached": 100_000, "tokens_cache_write": 20_000, "tokens_output": 1_000}
    # launch, > 200K: $10 in, $1 read, $12.50 write, $37.50 out: 1.8 + 0.1 + 0.25 + 0.0375 USD
    assert nano("claude-opus-4-6", day("2026-03-01T12:00:00"), **counts) == 2_187_500_000
    # flat from 2026-03-13: $5 in, $0.50 read, $6.25 write, $25 out: 0.9 + 0.05 + 0.125 + 0.025 USD
    assert nano("claude-opus-4-6", TODAY, **counts) == 1_100_000_000


def test_gemini_2_5_cache_reads_changed_without_repricing_old_events() -> None:
    counts = {"tokens_input": 100_000, "tokens_cached": 80_000}
    # before: $0.30 in, $0.075 cached per 1M: 20K x 0.3 + 80K x 0.075 = 0.006 + 0.006 USD
    assert nano("gemini-2.5-flash", day("2025-08-01T00:00:00"), **counts) == 12_000_000
    # after: cached $0.03 per 1M: 0.006 + 0.0024 USD
    assert nano("gemini-2.5-flash", TODAY, **counts) == 8_400_000
    # 2.5 Pro, <= 200K: cached $0.31 -> $0.125 per 1M on 100K cached tokens (input 100K, all cached)
    assert nano("gemini-2.5-pro", day("2025-08-01T00:00:00"), tokens_input=100_000, tokens_cached=100_000) == 31_000_000
    assert nano("gemini-2.5-pro", TODAY, tokens_input=100_000, tokens_cached=100_000) == 12_500_000


def test_mistral_large_latest_follows_large_3_while_pinned_large_2_1_keeps_its_price() -> None:
    million = {"tokens_input": 1_000_000, "tokens_output": 1_000_000}
    assert nano("mistral-large-latest", day("2025-11-01T00:00:00"), **million) == 8 * NANO  # $2 + $6
    assert nano("mistral-large-latest", TODAY, **million) == 2 * NANO  # Large 3: $0.50 + $1.50
    assert nano("mistral-large-2411", TODAY, **million) == 8 * NANO
    assert nano("mistralai/mistral-large-2512", TODAY, **million) == 2 * NANO


@pytest.mark.parametrize(
    ("model", "before", "after", "before_nano", "after_nano"),
    [
        # 100K in + 100K out (under the 272K tier). OpenAI cut Luna 80% on 2026-07-30: $1 + $6 -> $0.20 + $1.20 per 1M
        ("gpt-5.6-luna", "2026-07-29T23:59:59", "2026-07-30T00:00:00", 700_000_000, 140_000_000),
        # Sonnet 5: introductory $2 + $10 through August 2026, then $3 + $15
        ("claude-sonnet-5", "2026-08-31T23:59:59", "2026-09-01T00:00:00", 1_200_000_000, 1_800_000_000),
        # Gemini 3.6 Flash: introductory $0.75 + $3.75 through 2026, then $1.50 + $7.50
        ("gemini-3.6-flash", "2026-12-31T23:59:59", "2027-01-01T00:00:00", 450_000_000, 900_000_000),
    ],
)
def test_dated_versions_switch_at_their_effective_moment(
    model: str, before: str, after: str, before_nano: int, after_nano: int
) -> None:
    counts = {"tokens_input": 100_000, "tokens_output": 100_000}
    assert nano(model, day(before), **counts) == before_nano
    assert nano(model, day(after), **counts) == after_nano


def test_the_ledger_prices_each_event_by_the_version_in_force_at_its_own_time() -> None:
    # EventPricer resolves a (model, provider, tier) once and keeps every version: events on both sides of a
    # price change, logged in any order through one pricer, each take their own moment's price.
    pricer = EventPricer(BOOK, lambda: TODAY, timedelta(0))
    counts = {"tokens_input": 100_000, "tokens_output": 100_000}
    moments = ["2026-08-31T23:59:59", "2026-09-01T00:00:00", "2026-08-01T00:00:00", "2026-10-01T00:00:00"]
    for provider in (None, "anthropic"):
        for moment in moments:
            event = UsageEvent(
                user_id="p1", model="claude-sonnet-5", provider=provider, timestamp=day(moment), **counts
            )
            assert pricer.build(event).cost_nano == nano("claude-sonnet-5", day(moment), **counts)
    assert [pricer.build(UsageEvent(user_id="p", model="claude-sonnet-5", timestamp=day(m), **counts)).cost_nano
            for m in moments] == [1_200_000_000, 1_800_000_000, 1_200_000_000, 1_800_000_000]  # fmt: skip


def test_contracted_rates_are_untouched_by_the_refresh() -> None:
    contracted = {e.model_id: (str(e.input_per_1k), str(e.output_per_1k)) for e in BOOK.entries() if e.contracted}
    assert contracted == {
        "meta/meta-llama-3-8b-instruct": ("0.0001", "0.0001"),
        "meta/meta-llama-3-70b-instruct": ("0.0006", "0.0006"),
        "anthropic/claude-3.5-haiku": ("0.001", "0.005"),
        "anthropic/claude-3-haiku": ("0.00025", "0.00125"),
        "anthropic/claude-3.5-sonnet": ("0.003", "0.015"),
        "anthropic/claude-4.5-sonnet": ("0.003", "0.015"),
        "anthropic/claude-3-opus": ("0.015", "0.075"),
    }
