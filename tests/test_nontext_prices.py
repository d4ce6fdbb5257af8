"""The shipped book prices the non-text models a game uses: each realistic event costs the hand-computed nano-USD.

Every expected figure is worked out in the comment beside it from the rates in ``services/data/prices.toml``
(USD per 1K characters, per second, per image, per 1K tokens, per 1K searches); 1 USD = 10^9 nano-USD.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.pricing import PriceBook, TokenCounts, cost_nano, rate_value

BOOK = PriceBook.load()
AT = datetime(2026, 11, 24, 12, tzinfo=UTC)
# dall-e-3 left OpenAI's API on 2026-05-12; its events are the ones logged before that.
BEFORE_DALLE_RETIREMENT = datetime(2026, 3, 1, tzinfo=UTC)

NONTEXT_MODELS = (
    "openai/tts-1",
    "openai/tts-1-hd",
    "openai/gpt-4o-mini-tts",
    "openai/whisper-1",
    "openai/gpt-4o-transcribe",
    "openai/dall-e-3",
    "openai/gpt-image-1",
    "replicate/stability-ai/sdxl",
    "replicate/openai/whisper",
    "elevenlabs/eleven_multilingual_v2",
    "elevenlabs/eleven_flash_v2_5",
)


def nano(model: str, at: datetime = AT, **counts: int) -> int:
    match = BOOK.lookup(model, at=at)
    assert match.rule == "book", f"{model} is not in the shipped book (priced by rule {match.rule!r})"
    return cost_nano(match.entry, TokenCounts(**counts))


@pytest.mark.parametrize(
    ("model", "counts", "expected"),
    [
        # 1200 characters x $0.015 / 1K = $0.018
        ("tts-1", {"characters": 1200}, 18_000_000),
        # 1200 characters x $0.03 / 1K = $0.036
        ("tts-1-hd", {"characters": 1200}, 36_000_000),
        # 50 text tokens x $0.0006 / 1K = $0.00003; 1500 audio tokens x $0.012 / 1K = $0.018
        ("gpt-4o-mini-tts", {"tokens_input": 50, "tokens_output": 1500, "tokens_audio_output": 1500}, 18_030_000),
        # 90 s x $0.0001 = $0.009 ($0.006 per minute)
        ("whisper-1", {"audio_seconds": 90}, 9_000_000),
        # 50 text tokens x $0.0025 / 1K = $0.000125; 1450 audio tokens x $0.006 / 1K = $0.0087;
        # 300 transcript tokens x $0.01 / 1K = $0.003
        (
            "gpt-4o-transcribe",
            {"tokens_input": 1500, "tokens_audio_input": 1450, "tokens_output": 300},
            11_825_000,
        ),
        # an edit: 100 text tokens x $0.005 / 1K = $0.0005; 1000 image tokens x $0.01 / 1K = $0.01;
        # a 1024x1024 high-quality image, 4160 tokens x $0.04 / 1K = $0.1664
        (
            "gpt-image-1",
            {"tokens_input": 1100, "tokens_image_input": 1000, "tokens_output": 4160},
            176_900_000,
        ),
        # 400 cached text tokens x $0.00125 / 1K = $0.0005; 100 fresh x $0.005 / 1K = $0.0005;
        # 1056 image tokens (1024x1024 medium) x $0.04 / 1K = $0.04224
        ("gpt-image-1", {"tokens_input": 500, "tokens_cached": 400, "tokens_output": 1056}, 43_240_000),
        # 7 s on an L40S x $0.000975 = $0.006825
        ("replicate/stability-ai/sdxl", {"compute_seconds": 7}, 6_825_000),
        # 30 s on a T4 x $0.000225 = $0.00675
        ("replicate/openai/whisper", {"compute_seconds": 30}, 6_750_000),
        # 1200 characters x 1 credit x $0.22 / 1K credits = $0.264
        ("elevenlabs/eleven_multilingual_v2", {"characters": 1200}, 264_000_000),
        # 1200 characters x 0.5 credits x $0.22 / 1K credits = $0.132
        ("elevenlabs/eleven_flash_v2_5", {"characters": 1200}, 132_000_000),
    ],
)
def test_a_realistic_event_costs_the_hand_computed_amount(model: str, counts: dict[str, int], expected: int) -> None:
    assert nano(model, **counts) == expected


def test_dalle_3_is_priced_per_standard_1024_image() -> None:
    # 2 images x $0.04 = $0.08; its prompt tokens are not billed
    assert nano("dall-e-3", at=BEFORE_DALLE_RETIREMENT, images=2, tokens_input=40) == 80_000_000


def test_tokens_logged_on_a_model_billed_by_another_kind_cost_nothing() -> None:
    # tts-1 bills characters only: stray token counts add nothing to 1000 characters x $0.015 / 1K
    assert nano("tts-1", characters=1000, tokens_input=300, tokens_output=10) == 15_000_000
    assert nano("replicate/stability-ai/sdxl", tokens_input=77, compute_seconds=1) == 975_000


def test_claude_web_searches_cost_ten_dollars_per_thousand() -> None:
    # 1000 in x $0.003 / 1K = $0.003; 200 out x $0.015 / 1K = $0.003; 3 searches x $10 / 1K = $0.03
    assert nano("claude-sonnet-4.6", tokens_input=1000, tokens_output=200, web_searches=3) == 36_000_000
    assert nano("claude-haiku-4.5", web_searches=1) == 10_000_000


def test_every_list_priced_claude_version_has_the_search_rate_and_contracts_are_left_alone() -> None:
    claude = [entry for entry in BOOK.entries() if entry.model_id.startswith("anthropic/")]
    listed = [entry for entry in claude if not entry.contracted]
    assert len(listed) >= 16
    for entry in listed:
        assert rate_value(entry, "per_1k_searches") == Decimal("10"), entry.model_id
    # The contracted rate card carried over from the replaced service has no search rate of its own.
    for entry in claude:
        if entry.contracted:
            assert rate_value(entry, "per_1k_searches") is None, entry.model_id
    assert rate_value(BOOK.defaults()["anthropic"], "per_1k_searches") == Decimal("10")


@pytest.mark.parametrize("model_id", NONTEXT_MODELS)
def test_each_nontext_entry_names_its_source_and_date(model_id: str) -> None:
    entry = BOOK.lookup(model_id, at=BEFORE_DALLE_RETIREMENT).entry
    assert entry.model_id == model_id
    assert entry.source.startswith("https://")
    assert entry.source_date is not None


@pytest.mark.parametrize("model", ["firecrawl/scrape", "firecrawl/crawl", "firecrawl/extract"])
def test_every_firecrawl_endpoint_the_client_names_is_priced_per_credit_not_by_the_default(model: str) -> None:
    match = BOOK.lookup(model, at=AT)
    assert not match.is_fallback and match.entry.model_id == "firecrawl/scrape"
    assert cost_nano(match.entry, TokenCounts(credits=5)) == 4_150_000  # 5 credits at $0.00083
