"""Cost computation: hand-computed prices for known models, every rate kind, and the money properties."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.pricing import (
    NANO_PER_USD,
    LongContextRates,
    PriceBook,
    PriceEntry,
    TokenCountError,
    TokenCounts,
    cost_nano,
    cost_usd,
    model_cost_info,
    nano_to_usd,
    rates_for,
)

D = Decimal
BOOK = PriceBook.load()
NOW = datetime.now(UTC)


def price(model: str, **counts: int) -> Decimal:
    return cost_usd(BOOK.lookup(model, at=NOW).entry, TokenCounts(**counts))


def entry(**fields: object) -> PriceEntry:
    base: dict[str, object] = {
        "model_id": "test/model",
        "provider": "test",
        "unit": "tokens",
        "input_per_1k": D("0.002"),
        "output_per_1k": D("0.008"),
        "source": "test",
    }
    return PriceEntry(**{**base, **fields})  # type: ignore[arg-type]


# --- hand-computed examples ---------------------------------------------------------------------------------


def test_plain_input_and_output() -> None:
    # gpt-4o: $2.50 / $10 per 1M -> 1000 * 0.0025/1K + 500 * 0.01/1K
    assert price("gpt-4o", tokens_input=1000, tokens_output=500) == D("0.0075")


def test_contracted_sonnet_prices_a_typical_call_exactly() -> None:
    assert price("claude-3-5-sonnet-20241022", tokens_input=1234, tokens_output=567) == D("0.012207")


def test_cached_input_is_billed_at_the_cache_rate() -> None:
    # 6000 uncached * 0.0025 + 4000 cached * 0.00125 + 1000 out * 0.01, per 1K
    assert price("gpt-4o", tokens_input=10_000, tokens_cached=4000, tokens_output=1000) == D("0.03")


def test_cache_reads_and_writes_use_their_own_rates() -> None:
    # claude-haiku-4.5: 5000 * 0.001 + 2000 * 0.0001 + 3000 * 0.00125 + 1000 * 0.005, per 1K
    cost = price(
        "claude-haiku-4-5-20251001",
        tokens_input=10_000,
        tokens_cached=2000,
        tokens_cache_write=3000,
        tokens_output=1000,
    )
    assert cost == D("0.01395")


def test_missing_cache_rates_fall_back_to_the_input_price() -> None:
    plain = cost_usd(entry(), TokenCounts(tokens_input=1000))
    assert cost_usd(entry(), TokenCounts(tokens_input=1000, tokens_cached=300, tokens_cache_write=700)) == plain


def test_reasoning_tokens_use_the_reasoning_rate_or_else_output() -> None:
    counts = TokenCounts(tokens_output=1000, tokens_reasoning=400)
    assert cost_usd(entry(), counts) == D("0.008")
    # 600 plain output * 0.008 + 400 reasoning * 0.02, per 1K
    assert cost_usd(entry(reasoning_per_1k=D("0.02")), counts) == D("0.0128")


def test_long_context_rates_apply_to_the_whole_request_above_the_threshold() -> None:
    at_threshold = price("claude-sonnet-4", tokens_input=200_000, tokens_output=1000)
    above = price("claude-sonnet-4", tokens_input=200_001, tokens_output=1000)
    assert at_threshold == D("0.6") + D("0.015")
    assert above == D("200001") * D("0.006") / 1000 + D("1000") * D("0.0225") / 1000
    assert above == D("1.222506")


def test_long_context_cache_rates_apply_too() -> None:
    # gemini-2.5-pro above 200K: 150K uncached * 0.0025 + 100K cached * 0.000625 + 2K out * 0.015, per 1K
    # (the cache-read prices before Google cut them on 2025-10-31; the book keeps both versions)
    entry = BOOK.lookup("gemini-2.5-pro", at=datetime(2025, 9, 1, tzinfo=UTC)).entry
    cost = cost_usd(entry, TokenCounts(tokens_input=250_000, tokens_cached=100_000, tokens_output=2000))
    assert cost == D("0.375") + D("0.0625") + D("0.03")


def test_long_context_tier_falls_back_to_base_rates_it_does_not_set() -> None:
    tiered = entry(
        cached_input_per_1k=D("0.0005"),
        long_context_threshold=10,
        long_context=LongContextRates(input_per_1k=D("0.004")),
    )
    rates = rates_for(tiered, 11)
    assert rates.long_context
    assert (rates.input, rates.output, rates.cached_input, rates.cache_write, rates.reasoning) == (
        D("0.004"),
        D("0.008"),
        D("0.0005"),
        D("0.004"),
        D("0.008"),
    )
    assert not rates_for(tiered, 10).long_context


def test_per_request_pricing_ignores_tokens() -> None:
    assert price("cerebras/llama3.1-8b", tokens_input=5000, tokens_output=5000, requests=3) == D("0.000018")


def test_per_credit_pricing() -> None:
    assert price("firecrawl/scrape", credits=10) == D("0.0083")
    assert cost_nano(BOOK.lookup("firecrawl/scrape").entry, TokenCounts(credits=9)) == 7_470_000


def test_free_models_cost_nothing() -> None:
    assert price("meta-llama/llama-3.3-70b-instruct:free", tokens_input=10**6, tokens_output=10**6) == 0
    ollama = BOOK.lookup("ollama/llama3").entry
    assert cost_nano(ollama, TokenCounts(tokens_input=10**6, tokens_output=10**6)) == 0


def test_a_price_change_prices_each_event_at_its_own_time() -> None:
    counts = TokenCounts(tokens_input=1000, tokens_output=1000)
    before = BOOK.lookup("o3", at=datetime(2025, 5, 1, tzinfo=UTC)).entry
    after = BOOK.lookup("o3", at=datetime(2025, 7, 1, tzinfo=UTC)).entry
    assert (cost_usd(before, counts), cost_usd(after, counts)) == (D("0.05"), D("0.01"))


def test_fallback_default_prices_unknown_models_at_the_global_rate() -> None:
    assert price("totally-unknown-model", tokens_input=1000, tokens_output=1000) == D("0.006")


# --- validation -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(TokenCounts)])
def test_negative_counts_are_refused_naming_the_field(field: str) -> None:
    with pytest.raises(ValueError, match=field) as caught:
        cost_usd(entry(), TokenCounts(**{field: -1}))
    assert isinstance(caught.value, TokenCountError) and caught.value.field == field


@pytest.mark.parametrize(
    ("counts", "field"),
    [
        (TokenCounts(tokens_input=10, tokens_cached=6, tokens_cache_write=5), "tokens_cached"),
        (TokenCounts(tokens_input=10, tokens_cached=11), "tokens_cached"),
        (TokenCounts(tokens_output=10, tokens_reasoning=11), "tokens_reasoning"),
        (TokenCounts(tokens_input=1.5), "tokens_input"),  # type: ignore[arg-type]
    ],
)
def test_impossible_counts_are_refused_naming_the_field(counts: TokenCounts, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        cost_nano(entry(), counts)


def test_free_models_still_refuse_impossible_counts() -> None:
    with pytest.raises(ValueError, match="tokens_reasoning"):
        cost_usd(entry(unit="free"), TokenCounts(tokens_output=1, tokens_reasoning=2))


# --- nano-dollars ------------------------------------------------------------------------------------------------


def test_nano_rounding_is_half_even_once_per_event() -> None:
    half_nano = entry(unit="request", input_per_1k=D(0), output_per_1k=D(0), per_request=D("0.0000000005"))
    assert [cost_nano(half_nano, TokenCounts(requests=n)) for n in (1, 2, 3, 5)] == [0, 1, 2, 2]


def test_nano_to_usd_is_exact() -> None:
    assert nano_to_usd(1) == D("0.000000001")
    assert nano_to_usd(7_470_000) == D("0.00747")
    assert nano_to_usd(-5) == D("-0.000000005")
    assert nano_to_usd(10**20) == D(10**11)


# --- model_cost_info -------------------------------------------------------------------------------------------


def test_model_cost_info_keeps_the_replaced_shape_and_adds_every_rate() -> None:
    info = model_cost_info(BOOK.lookup("gpt-4o").entry)
    assert info["input"] == 0.0025 and info["output"] == 0.01 and info["cached_input"] == 0.00125
    assert "cache_write" not in info and "per_request" not in info
    assert info["unit"] == "tokens" and info["model_id"] == "openai/gpt-4o" and info["provider"] == "openai"
    assert info["is_default"] is False and str(info["source"]).startswith("https://")


def test_model_cost_info_shows_long_context_and_default_flags() -> None:
    sonnet = model_cost_info(BOOK.lookup("claude-sonnet-4").entry)
    assert sonnet["long_context_threshold"] == 200_000 and sonnet["long_context_output"] == 0.0225
    assert model_cost_info(BOOK.lookup("no-such-model").entry)["is_default"] is True
    cerebras = model_cost_info(BOOK.lookup("cerebras/llama3.1-8b").entry)
    assert cerebras["unit"] == "request" and cerebras["per_request"] == 0.000006


# --- properties --------------------------------------------------------------------------------------------------

SHIPPED = [*BOOK.entries(), *BOOK.defaults().values()]
FLAT_SHIPPED = [e for e in SHIPPED if e.long_context is None]
rate = st.decimals(min_value=0, max_value=1, places=9, allow_nan=False, allow_infinity=False)
optional_rate = st.none() | rate


@st.composite
def synthetic_entries(draw: st.DrawFn) -> PriceEntry:
    return entry(
        unit=draw(st.sampled_from(["tokens", "request", "credit", "free"])),
        input_per_1k=draw(rate),
        output_per_1k=draw(rate),
        cached_input_per_1k=draw(optional_rate),
        cache_write_per_1k=draw(optional_rate),
        reasoning_per_1k=draw(optional_rate),
        per_request=draw(optional_rate),
        per_credit=draw(optional_rate),
    )


any_flat_entry = st.sampled_from(FLAT_SHIPPED) | synthetic_entries()
any_entry = st.sampled_from(SHIPPED) | synthetic_entries()
amount = st.integers(min_value=0, max_value=3_000_000)


@st.composite
def token_counts(draw: st.DrawFn) -> TokenCounts:
    uncached, cached, written = draw(amount), draw(amount), draw(amount)
    plain, reasoning = draw(amount), draw(amount)
    return TokenCounts(
        tokens_input=uncached + cached + written,
        tokens_cached=cached,
        tokens_cache_write=written,
        tokens_output=plain + reasoning,
        tokens_reasoning=reasoning,
        credits=draw(st.integers(0, 10_000)),
        requests=draw(st.integers(0, 100)),
    )


def add(a: TokenCounts, b: TokenCounts) -> TokenCounts:
    return TokenCounts(**{f.name: getattr(a, f.name) + getattr(b, f.name) for f in dataclasses.fields(TokenCounts)})


@settings(max_examples=300)
@given(any_entry, token_counts())
def test_cost_is_never_negative(price_entry: PriceEntry, counts: TokenCounts) -> None:
    assert cost_usd(price_entry, counts) >= 0
    assert cost_nano(price_entry, counts) >= 0


@settings(max_examples=300)
@given(any_flat_entry, token_counts(), token_counts())
def test_splitting_an_event_in_two_changes_nothing_but_rounding(
    price_entry: PriceEntry, a: TokenCounts, b: TokenCounts
) -> None:
    # Exact in Decimal; at most 1 nano apart once each event is rounded on its own. (A long-context tier
    # is priced per request, so splitting a long prompt legitimately changes its price: flat entries only.)
    whole = add(a, b)
    assert cost_usd(price_entry, a) + cost_usd(price_entry, b) == cost_usd(price_entry, whole)
    assert abs(cost_nano(price_entry, a) + cost_nano(price_entry, b) - cost_nano(price_entry, whole)) <= 1


@settings(max_examples=300)
@given(token_counts())
def test_cost_nano_equals_the_hand_computed_value_for_gpt_4o(counts: TokenCounts) -> None:
    uncached = counts.tokens_input - counts.tokens_cached - counts.tokens_cache_write
    usd = (
        D(uncached) * D("0.0025")
        + D(counts.tokens_cached) * D("0.00125")
        + D(counts.tokens_cache_write) * D("0.0025")
        + D(counts.tokens_output) * D("0.01")
    ) / D(1000)
    expected = int((usd * NANO_PER_USD).quantize(D(1), rounding=ROUND_HALF_EVEN))
    assert cost_nano(BOOK.lookup("openai/gpt-4o").entry, counts) == expected


@settings(max_examples=300)
@given(token_counts())
def test_cost_nano_equals_the_hand_computed_value_for_claude_sonnet_4_both_tiers(counts: TokenCounts) -> None:
    long = counts.tokens_input > 200_000
    rates = (
        (D("0.006"), D("0.0006"), D("0.0075"), D("0.0225"))
        if long
        else (D("0.003"), D("0.0003"), D("0.00375"), D("0.015"))
    )
    uncached = counts.tokens_input - counts.tokens_cached - counts.tokens_cache_write
    usd = (
        uncached * rates[0]
        + counts.tokens_cached * rates[1]
        + counts.tokens_cache_write * rates[2]
        + counts.tokens_output * rates[3]
    ) / D(1000)
    expected = int((usd * NANO_PER_USD).quantize(D(1), rounding=ROUND_HALF_EVEN))
    assert cost_nano(BOOK.lookup("claude-sonnet-4-20250514").entry, counts) == expected


MORE = {  # adding k of one kind of token also adds k to the total that kind is part of
    "tokens_input": {"tokens_input": 1},
    "tokens_cached": {"tokens_input": 1, "tokens_cached": 1},
    "tokens_cache_write": {"tokens_input": 1, "tokens_cache_write": 1},
    "tokens_output": {"tokens_output": 1},
    "tokens_reasoning": {"tokens_output": 1, "tokens_reasoning": 1},
    "credits": {"credits": 1},
    "requests": {"requests": 1},
}


def test_shipped_long_context_rates_are_never_cheaper_than_the_base_rates() -> None:
    # What makes the monotonicity property below hold for tiered entries too.
    for item in SHIPPED:
        if item.long_context is not None:
            assert item.long_context_threshold is not None
            base, long = rates_for(item, 0), rates_for(item, item.long_context_threshold + 1)
            assert all(
                getattr(long, name) >= getattr(base, name)
                for name in ("input", "output", "cached_input", "cache_write", "reasoning")
            ), item.model_id


@settings(max_examples=300)
@given(any_entry, token_counts(), st.sampled_from(sorted(MORE)), st.integers(min_value=1, max_value=500_000))
def test_more_of_any_count_never_costs_less(
    price_entry: PriceEntry, counts: TokenCounts, kind: str, extra: int
) -> None:
    bigger = dataclasses.replace(
        counts, **{name: getattr(counts, name) + extra * step for name, step in MORE[kind].items()}
    )
    assert cost_usd(price_entry, bigger) >= cost_usd(price_entry, counts)


fine_rate = st.decimals(min_value=0, max_value=1, places=20, allow_nan=False, allow_infinity=False)


@settings(max_examples=400)
@given(any_entry | st.builds(entry, input_per_1k=fine_rate, per_request=st.none() | fine_rate), token_counts())
def test_cost_nano_is_cost_usd_rounded_half_even_whatever_the_rates_precision(
    price_entry: PriceEntry, counts: TokenCounts
) -> None:
    # cost_nano takes an integer path for rates in whole atto-USD and the Decimal path for finer ones.
    exact = cost_usd(price_entry, counts) * NANO_PER_USD
    assert cost_nano(price_entry, counts) == int(exact.to_integral_value(rounding=ROUND_HALF_EVEN))
