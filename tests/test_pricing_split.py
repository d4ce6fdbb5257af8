"""The integer pricer (``services.pricing.nano``) against the Decimal definition (``cost.exact_nano_by_kind``).

Every logged event is priced by a function generated once per (entry, tier); these tests pin it, for any rates
(whole nano-USD, whole atto-USD, finer), tier, long context and counts, to the exact split: the same total, the
same parts, parts that add up to the total and none that costs nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.ai_usage import ServiceTier, UsageEvent
from models.usage_kinds import KIND_NAMES, PARTS, USAGE_KINDS
from services.pricing import (
    LongContextRates,
    PriceBook,
    PriceEntry,
    TierRates,
    TokenCounts,
    applied_tier,
    cost_nano,
    cost_nano_by_kind,
    cost_nano_by_kind_validated,
    entry_pricer,
    price_version,
)
from services.pricing.cost import exact_nano_by_kind
from services.usage_events import EventPricer

BOOK = PriceBook.load()
NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
TIERS = ["standard", "batch", "flex", "priority"]
# Per 1K tokens: 6 places is whole nano-USD a token (the shipped rates), 15 whole atto-USD, 20 finer than that.
rate = st.integers(0, 2).flatmap(
    lambda kind: st.decimals(min_value=0, max_value=D("0.1"), places=(6, 15, 20)[kind], allow_nan=False)
)
optional_rate = st.none() | rate
# The rates a PriceEntry keeps in kind_rates: those that are not fields of their own.
KIND_ONLY_KEYS = [kind.rate for kind in USAGE_KINDS if kind.rate not in PriceEntry.__dataclass_fields__]


@st.composite
def entries(draw: st.DrawFn) -> PriceEntry:
    kind_rates = draw(st.dictionaries(st.sampled_from(KIND_ONLY_KEYS), rate, max_size=4))
    long = draw(st.none() | st.builds(LongContextRates, input_per_1k=optional_rate, output_per_1k=optional_rate))
    tiers = draw(
        st.dictionaries(
            st.sampled_from(TIERS[1:]),
            st.builds(
                TierRates,
                multiplier=st.none() | st.sampled_from([D("0.5"), D("2"), D("0.333")]),
                rates=st.dictionaries(st.sampled_from(["input_per_1k", "per_image"]), rate, max_size=1).map(
                    lambda rates: tuple(sorted(rates.items()))
                ),
            ),
            max_size=2,
        )
    )
    return PriceEntry(
        model_id="test/model",
        provider="test",
        unit=draw(st.sampled_from(["tokens", "tokens", "request", "credit", "free"])),
        input_per_1k=draw(rate),
        output_per_1k=draw(rate),
        cached_input_per_1k=draw(optional_rate),
        cache_write_per_1k=draw(optional_rate),
        reasoning_per_1k=draw(optional_rate),
        per_request=draw(optional_rate),
        per_credit=draw(optional_rate),
        long_context_threshold=draw(st.integers(0, 5_000)) if long is not None else None,
        long_context=long,
        kind_rates=tuple(sorted(kind_rates.items())),
        tiers=tuple(sorted(tiers.items())),
        source="test",
    )


@st.composite
def usages(draw: st.DrawFn) -> dict[str, int]:
    """Counts that keep the part-of rules, most of them zero as in real events, some tiny (under a nano-USD)."""
    amount = st.sampled_from([0, 0, 0, 1, 3]) | st.integers(0, 10_000) | st.integers(0, 3_000_000)
    values = {name: draw(amount) for name in KIND_NAMES}
    for whole, parts in PARTS.items():
        values[whole] = sum(values[part] for part in parts) + draw(amount)
    return values


def assert_exact(entry: PriceEntry, usage: dict[str, int], requests: int, tier: str) -> tuple[int, dict[str, int]]:
    values = (*(usage[name] for name in KIND_NAMES), requests)
    expected = exact_nano_by_kind(entry, values, tier)
    assert entry_pricer(entry, tier).cost_nano_by_kind(usage, requests) == expected
    assert cost_nano_by_kind_validated(entry, values, tier) == expected
    assert cost_nano_by_kind(entry, TokenCounts(**usage, requests=requests), tier) == expected
    assert cost_nano(entry, TokenCounts(**usage, requests=requests), tier) == expected[0]
    total, parts = expected
    assert sum(parts.values()) == total
    assert all(nano > 0 for nano in parts.values())
    return expected


@settings(max_examples=400, deadline=None)
@given(entries(), usages(), st.sampled_from([0, 1, 1, 1, 7]), st.sampled_from(TIERS))
def test_the_integer_split_is_the_exact_one_for_any_rates_tier_and_counts(
    entry: PriceEntry, usage: dict[str, int], requests: int, tier: str
) -> None:
    assert_exact(entry, usage, requests, tier)


@pytest.mark.parametrize("tier", TIERS)
def test_every_shipped_entry_splits_exactly_in_every_tier(tier: str) -> None:
    shapes = [
        {"tokens_input": 3_000, "tokens_output": 400},
        {"tokens_input": 3_001, "tokens_cached": 1_024, "tokens_output": 977, "tokens_reasoning": 601},
        {"tokens_input": 250_001, "tokens_cache_write": 7, "tokens_cache_write_1h": 3, "tokens_output": 1},
        {"tokens_input": 90, "tokens_audio_input": 40, "tokens_image_input": 50, "tokens_output": 3,
         "tokens_audio_output": 3, "characters": 333, "images": 2, "audio_seconds": 61, "compute_seconds": 7,
         "web_searches": 3, "credits": 11},
    ]  # fmt: skip
    for entry in [*BOOK.entries(), *BOOK.defaults().values()]:
        for shape in shapes:
            assert_exact(entry, {name: shape.get(name, 0) for name in KIND_NAMES}, 1, tier)


def test_the_ledger_prices_an_event_with_the_cached_pricer_of_its_entry_and_tier() -> None:
    pricer = EventPricer(BOOK, lambda: NOW, timedelta(0))
    event = UsageEvent(user_id="u", model="claude-sonnet-4", service_tier="batch", tokens_input=300_000,
                       tokens_cached=100_000, tokens_output=2_000, tokens_reasoning=500)  # fmt: skip
    match, provider, entry_price, nano, parts = pricer.price(event, NOW)
    assert entry_price is entry_pricer(match.entry, ServiceTier.BATCH)  # built once, then reused
    assert entry_price.tier == applied_tier(match.entry, "batch")
    assert entry_price.version == price_version(match.entry)
    assert (nano, parts) == exact_nano_by_kind(
        match.entry, (*(getattr(event, name) for name in KIND_NAMES), 1), "batch"
    )
    assert provider == "anthropic"
    assert "tokens_reasoning" in parts and sum(parts.values()) == nano


def test_the_generated_source_names_only_kinds_and_numbers() -> None:
    # Nothing from a price file but rates (as integers) reaches the generated code: not the id, nor its source.
    entry = PriceEntry(model_id='x/"; import os #', provider="x", unit="tokens", input_per_1k=D("0.0000005"),
                       output_per_1k=D("0.002"), source="\nraise SystemExit\n")  # fmt: skip
    pricer = entry_pricer(entry)
    assert "import" not in pricer.source and "SystemExit" not in pricer.source
    assert pricer.cost_nano_by_kind({name: 1_000 if name == "tokens_input" else 0 for name in KIND_NAMES}) == (
        500,
        {"tokens_input": 500},
    )
