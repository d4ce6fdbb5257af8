"""Our cost equals LiteLLM's to the nano-USD wherever both books have the same prices (issue 9).

Needs the benchmark extra (``pip install -e ".[bench]"``, LiteLLM pinned); skipped without it, as in CI. LiteLLM
returns float USD: each float is read as the decimal it prints as, the sum rounded half-even to nano-USD, and a
difference of 1 nano-USD is allowed for float error.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM's bundled map: never the network
litellm = pytest.importorskip("litellm")

from models.usage_kinds import KIND_NAMES, KINDS_BY_NAME  # noqa: E402
from services.pricing import PriceBook, TokenCounts, cost_nano, rates_for  # noqa: E402

AT = datetime(2026, 11, 24, 12, tzinfo=UTC)
# What each provider's usage object reports beyond prompt and completion tokens (README, token convention).
OPENAI = frozenset({"tokens_cached", "tokens_reasoning", "tokens_image_input", "tokens_audio_input"})
ANTHROPIC = frozenset({"tokens_cached", "tokens_cache_write", "tokens_image_input"})
GEMINI = OPENAI
DEEPSEEK = frozenset({"tokens_cached", "tokens_reasoning"})
MISTRAL: frozenset[str] = frozenset()
# Models whose prices are the same in our book and in LiteLLM 1.110.2 for every kind their provider reports:
# (spelling as games log it, LiteLLM's key, the parts reported).
SAME_PRICE_MODELS = (
    ("gpt-4o-mini", "gpt-4o-mini", OPENAI),
    ("openai/gpt-4o", "gpt-4o", OPENAI),
    ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini-2025-04-14", OPENAI),
    ("gpt-5-mini", "gpt-5-mini", OPENAI),
    ("gpt-5", "gpt-5", OPENAI),
    ("o4-mini", "o4-mini", OPENAI),
    ("claude-haiku-4-5", "claude-haiku-4-5", ANTHROPIC),
    ("claude-opus-4-5-20251101", "claude-opus-4-5-20251101", ANTHROPIC),
    ("us.anthropic.claude-sonnet-4-20250514-v1:0", "us.anthropic.claude-sonnet-4-20250514-v1:0", ANTHROPIC),
    ("gemini-2.5-flash", "gemini/gemini-2.5-flash", GEMINI),
    ("models/gemini-2.5-pro", "gemini/gemini-2.5-pro", GEMINI),
    ("gemini-2.5-flash-lite", "gemini/gemini-2.5-flash-lite", GEMINI),
    ("deepseek-chat", "deepseek/deepseek-chat", DEEPSEEK),
    ("deepseek-reasoner", "deepseek/deepseek-reasoner", DEEPSEEK),
    ("mistral-large-latest", "mistral/mistral-large-latest", MISTRAL),
)
# Token shapes in the project's convention (input and output are wholes, the rest their parts).
SHAPES = {
    "plain": {"tokens_input": 1234, "tokens_output": 567},
    "cache read": {"tokens_input": 5000, "tokens_cached": 3072, "tokens_output": 321},
    "cache write": {"tokens_input": 4100, "tokens_cache_write": 3900, "tokens_output": 77},
    "cache read and write": {"tokens_input": 9000, "tokens_cached": 4000, "tokens_cache_write": 3000,
                             "tokens_output": 640},
    "reasoning": {"tokens_input": 2345, "tokens_output": 3999, "tokens_reasoning": 3100},
    "image input": {"tokens_input": 3000, "tokens_image_input": 1105, "tokens_output": 250},
    "audio input": {"tokens_input": 900, "tokens_audio_input": 400, "tokens_output": 33},
    "odd counts": {"tokens_input": 1, "tokens_output": 3},
    "large": {"tokens_input": 150_001, "tokens_cached": 99_999, "tokens_output": 12_345},
}  # fmt: skip
CASES = [
    pytest.param(model, litellm_model, shape, id=f"{model}-{shape}")
    for model, litellm_model, reported in SAME_PRICE_MODELS
    for shape, usage in SHAPES.items()
    if set(usage) - {"tokens_input", "tokens_output"} <= reported
]
# The LiteLLM rate each of our kinds is billed at when the call passes prompt, completion, cache read and cache
# write counts: parts it is not told about go at their whole's rate.
LITELLM_RATES = {
    "tokens_input": ("input_cost_per_token",),
    "tokens_cached": ("cache_read_input_token_cost", "input_cost_per_token"),
    "tokens_cache_write": ("cache_creation_input_token_cost", "input_cost_per_token"),
    "tokens_audio_input": ("input_cost_per_token",),
    "tokens_image_input": ("input_cost_per_token",),
    "tokens_output": ("output_cost_per_token",),
    "tokens_reasoning": ("output_cost_per_token",),
}


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook.load()


def litellm_rate(litellm_model: str, kind: str) -> Decimal:
    info = litellm.model_cost[litellm_model]
    return next(Decimal(repr(info[key])) for key in LITELLM_RATES[kind] if info.get(key) is not None)


def differing_rates(book: PriceBook, model: str, litellm_model: str, usage: dict[str, int]) -> list[str]:
    """The kinds this usage bills whose per-unit rate differs between our entry and LiteLLM's map."""
    rates = rates_for(book.lookup(model, AT).entry, usage["tokens_input"])
    assert not rates.long_context and rates.per_request == 0
    return [
        kind
        for kind, units in usage.items()
        if units and rates.of(kind) / KINDS_BY_NAME[kind].per != litellm_rate(litellm_model, kind)
    ]


def litellm_nano(litellm_model: str, usage: dict[str, int]) -> int:
    prompt, completion = litellm.cost_per_token(
        model=litellm_model,
        prompt_tokens=usage["tokens_input"],
        completion_tokens=usage["tokens_output"],
        cache_read_input_tokens=usage.get("tokens_cached", 0),
        cache_creation_input_tokens=usage.get("tokens_cache_write", 0),
    )
    usd = Decimal(repr(prompt)) + Decimal(repr(completion))
    return int((usd * 10**9).to_integral_value(rounding=ROUND_HALF_EVEN))


@pytest.mark.parametrize(("model", "litellm_model", "shape"), CASES)
def test_cost_equals_litellm_to_the_nano_where_prices_are_the_same(
    book: PriceBook, model: str, litellm_model: str, shape: str
) -> None:
    usage = SHAPES[shape]
    # The pinned LiteLLM has these prices; if an upgrade changes one, the list above is what to revisit.
    assert differing_rates(book, model, litellm_model, usage) == []
    ours = cost_nano(book.lookup(model, AT).entry, TokenCounts(**{k: usage.get(k, 0) for k in KIND_NAMES}))
    assert abs(ours - litellm_nano(litellm_model, usage)) <= 1


def test_a_model_priced_differently_is_recognised_as_such(book: PriceBook) -> None:
    # Our contract rate card has no cache-read discount for Sonnet 4.5; LiteLLM's list price has one. Such events
    # are left out of the comparison, so the check above must see the difference rather than pass it.
    usage = SHAPES["cache read"]
    assert differing_rates(book, "claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929", usage) == ["tokens_cached"]
    ours = cost_nano(book.lookup("claude-sonnet-4-5-20250929", AT).entry, TokenCounts(**usage))
    assert ours != litellm_nano("claude-sonnet-4-5-20250929", usage)
