"""Every usage kind is priced by its own rate, in the event's service tier, exactly; read from a real price file."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.usage_kinds import KIND_NAMES, PARTS
from services.pricing import PriceBook, PriceBookError, TokenCounts, cost_nano, cost_usd, read_price_file
from services.store.sqlite_store import SQLiteUsageStore
from services.usage_tracking_service import UsageTrackingService

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
PRICES = """
[[models]]
id = "studio/voice-and-art"
input_per_1k = "0.002"
output_per_1k = "0.008"
cached_input_per_1k = "0.0005"
cache_write_per_1k = "0.0025"
cache_write_1h_per_1k = "0.004"
audio_input_per_1k = "0.04"
audio_output_per_1k = "0.08"
per_image = "0.04"
per_1k_characters = "0.015"
per_audio_second = "0.0001"
per_compute_second = "0.0014"
per_1k_searches = "10"
source = "test"
source_date = 2026-11-01
tiers = { batch = { multiplier = "0.5" }, priority = { input_per_1k = "0.0036", output_per_1k = "0.0144" } }

[[models]]
id = "studio/plain"
input_per_1k = "0.002"
output_per_1k = "0.008"
cache_write_per_1k = "0.0025"
source = "test"
source_date = 2026-11-01

[defaults."*"]
input_per_1k = "0.001"
output_per_1k = "0.005"
source = "test"
source_date = 2026-11-01
"""


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> PriceBook:
    path = Path(tmp_path_factory.mktemp("prices")) / "prices.toml"
    path.write_text(PRICES, encoding="utf-8")
    entries, defaults = read_price_file(path)
    return PriceBook.from_entries(entries, defaults)


def nano(book: PriceBook, model: str, tier: str = "standard", **counts: int) -> int:
    return cost_nano(book.lookup(model, at=NOW).entry, TokenCounts(**counts), tier)


@pytest.mark.parametrize(
    ("counts", "expected_nano"),
    [
        ({"images": 3}, 120_000_000),  # 3 x $0.04
        ({"characters": 1200}, 18_000_000),  # 1.2K x $0.015
        ({"audio_seconds": 60}, 6_000_000),  # 60 x $0.0001
        ({"compute_seconds": 10}, 14_000_000),  # 10 x $0.0014
        ({"web_searches": 3}, 30_000_000),  # 3 x $10 / 1K
        # 1,000 prompt tokens: 600 plain at 0.002, 300 cached at 0.0005, 100 audio at 0.04 (per 1K)
        ({"tokens_input": 1000, "tokens_cached": 300, "tokens_audio_input": 100}, 1_200_000 + 150_000 + 4_000_000),
        # 500 output tokens of which 200 audio: 300 at 0.008, 200 at 0.08
        ({"tokens_output": 500, "tokens_audio_output": 200}, 2_400_000 + 16_000_000),
        ({"tokens_input": 1000, "tokens_cache_write_1h": 1000}, 4_000_000),  # the 1-hour rate
    ],
)
def test_each_kind_is_billed_at_its_own_rate(book: PriceBook, counts: dict[str, int], expected_nano: int) -> None:
    assert nano(book, "studio/voice-and-art", **counts) == expected_nano


def test_without_a_rate_of_their_own_1h_writes_bill_at_the_input_rate_never_the_5_minute_one(book: PriceBook) -> None:
    assert nano(book, "studio/plain", tokens_input=1000, tokens_cache_write_1h=1000) == 2_000_000  # 0.002, not 0.0025
    assert nano(book, "studio/plain", tokens_input=1000, tokens_cache_write=1000) == 2_500_000


def test_a_kind_the_entry_has_no_rate_for_is_not_billed(book: PriceBook) -> None:
    assert nano(book, "studio/plain", images=5, characters=100, web_searches=2) == 0


def test_a_tier_is_priced_by_its_multiplier_or_its_own_rates_else_at_standard(book: PriceBook) -> None:
    usage = {"tokens_input": 1000, "tokens_output": 1000, "images": 1}
    standard = nano(book, "studio/voice-and-art", **usage)
    assert standard == 2_000_000 + 8_000_000 + 40_000_000
    assert nano(book, "studio/voice-and-art", "batch", **usage) * 2 == standard
    # priority names input and output; the image keeps its standard rate
    assert nano(book, "studio/voice-and-art", "priority", **usage) == 3_600_000 + 14_400_000 + 40_000_000
    assert nano(book, "studio/voice-and-art", "flex", **usage) == standard  # no flex prices: standard


def test_a_tier_the_price_file_does_not_know_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(PRICES.replace("priority = {", "turbo = {"), encoding="utf-8")
    with pytest.raises(PriceBookError, match=r"tiers\.turbo: unknown service tier"):
        read_price_file(path)


@st.composite
def kind_values(draw: st.DrawFn) -> dict[str, int]:
    """Any usage that keeps the part-of rules: parts drawn first, each whole at least their sum."""
    values = {name: draw(st.integers(0, 2_000)) for name in KIND_NAMES}
    for whole, parts in PARTS.items():
        values[whole] = sum(values[part] for part in parts) + draw(st.integers(0, 2_000))
    return values


@settings(max_examples=150, deadline=None)
@given(kind_values(), kind_values(), st.sampled_from(["standard", "batch", "flex", "priority"]))
def test_cost_is_exact_never_negative_and_additive_over_events(book: PriceBook, a: dict, b: dict, tier: str) -> None:
    entry = book.lookup("studio/voice-and-art", at=NOW).entry
    first, second = TokenCounts(**a, requests=1), TokenCounts(**b, requests=1)
    both = TokenCounts(**{name: a[name] + b[name] for name in KIND_NAMES}, requests=2)
    exact = cost_usd(entry, first, tier)
    assert exact >= 0
    assert cost_usd(entry, first, tier) + cost_usd(entry, second, tier) == cost_usd(entry, both, tier)
    # the integer path is the Decimal one rounded once
    assert cost_nano(entry, first, tier) == int((exact * 10**9).to_integral_value())
    assert D(cost_nano(entry, first, tier)) == (exact * 10**9).quantize(D(1))


def test_the_ledger_keeps_the_tier_the_price_version_and_every_kind(tmp_path: Path, book: PriceBook) -> None:
    store = SQLiteUsageStore(tmp_path / "usage.db")
    ledger = UsageTrackingService(store, book, clock=lambda: NOW)
    batch = ledger.log_usage(user_id="p", model="studio/voice-and-art", service_tier="batch", images=2, characters=500)
    flex = ledger.log_usage(user_id="p", model="studio/plain", service_tier="flex", tokens_input=1000)
    assert (batch.log.service_tier, batch.log.price_tier) == ("batch", "batch")
    assert (flex.log.service_tier, flex.log.price_tier) == ("flex", "standard")  # no flex prices: visible
    assert batch.log.price_version == "studio/voice-and-art"
    assert batch.log.cost_nano == (80_000_000 + 7_500_000) // 2
    stored = ledger.get_event(batch.log.request_id)
    assert stored == batch.log
    usage = ledger.get_daily_usage("p").usage
    assert (usage["images"], usage["characters"], usage["tokens_input"]) == (2, 500, 1000)
    store.close()


@settings(max_examples=100, deadline=None)
@given(kind_values(), st.sampled_from(["standard", "batch", "flex", "priority"]))
def test_the_ledgers_trusted_path_prices_exactly_as_the_checked_one(book: PriceBook, values: dict, tier: str) -> None:
    from models.ai_usage import platform_credits_of
    from services.pricing import cost_nano_by_kind, cost_nano_by_kind_validated

    entry = book.lookup("studio/voice-and-art", at=NOW).entry
    checked = cost_nano_by_kind(entry, TokenCounts(**values), tier)
    assert cost_nano_by_kind_validated(entry, (*(values[name] for name in KIND_NAMES), 1), tier) == checked
    assert platform_credits_of(checked[0]) == int(cost_usd(entry, TokenCounts(**values), tier) * 100)


def test_counts_that_break_a_rule_are_refused_when_priced_naming_the_field(book: PriceBook) -> None:
    from services.pricing import TokenCountError

    entry = book.lookup("studio/voice-and-art", at=NOW).entry
    with pytest.raises(TokenCountError) as raised:
        cost_nano(entry, TokenCounts(tokens_input=10, tokens_cached=5, tokens_audio_input=6))
    assert raised.value.field == "tokens_cached"
