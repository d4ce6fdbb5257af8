"""The usage kinds an event counts: one table, from which the counters, the rollups, the stores' columns and the
summaries are derived.

A kind is a non-negative integer on an event (``tokens_input``, ``credits``...). Some kinds are *parts* of
another (``tokens_cached`` is the part of ``tokens_input`` read from a cache): their sum may not exceed the
whole, and each part is billed at its own rate, so every unit is billed exactly once. Adding a kind is a row
here, its rate in the price file, and its line in the README; a test keeps this table, ``appwrite.json``, the
SQLite schema and OpenAPI in step.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_TOKENS_PER_EVENT = 10_000_000
MAX_CREDITS_PER_EVENT = 1_000_000


@dataclass(frozen=True)
class UsageKind:
    name: str  # the event's field, the row's column and the rollup counter
    unit: str  # what one of it is: a token, an image, a second...
    total_field: str | None  # the summaries' own field for its total (the replaced service's names), if any
    bound: int  # the most one event may carry
    rate: str  # the price file's key for its price
    per: int  # how many units that price is quoted for (1,000 tokens; 1 image)
    fallback: str | None = None  # the rate that applies when an entry has none (None: not billed)
    part_of: str | None = None  # the kind this one is a part of
    description: str = ""


_TOKENS = MAX_TOKENS_PER_EVENT
_SECONDS = 24 * 3600
USAGE_KINDS: tuple[UsageKind, ...] = (
    UsageKind("tokens_input", "token", "total_input_tokens", _TOKENS, "input_per_1k", 1000,
              description="the whole prompt, cache reads and writes, audio and image input included"),
    UsageKind("tokens_output", "token", "total_output_tokens", _TOKENS, "output_per_1k", 1000,
              description="the whole completion, reasoning and audio output included"),
    UsageKind("tokens_cached", "token", "total_cached_tokens", _TOKENS, "cached_input_per_1k", 1000,
              "input_per_1k", part_of="tokens_input", description="prompt tokens read from a cache"),
    UsageKind("tokens_cache_write", "token", "total_cache_write_tokens", _TOKENS, "cache_write_per_1k", 1000,
              "input_per_1k", part_of="tokens_input", description="prompt tokens written to a 5-minute cache"),
    # Anthropic bills 1-hour writes at twice the input rate; without a rate of its own the input rate applies,
    # never the 5-minute write rate.
    UsageKind("tokens_cache_write_1h", "token", None, _TOKENS, "cache_write_1h_per_1k", 1000, "input_per_1k",
              part_of="tokens_input", description="prompt tokens written to a 1-hour cache"),
    UsageKind("tokens_audio_input", "token", None, _TOKENS, "audio_input_per_1k", 1000, "input_per_1k",
              part_of="tokens_input", description="prompt tokens of audio"),
    UsageKind("tokens_image_input", "token", None, _TOKENS, "image_input_per_1k", 1000, "input_per_1k",
              part_of="tokens_input", description="prompt tokens of images"),
    UsageKind("tokens_reasoning", "token", "total_reasoning_tokens", _TOKENS, "reasoning_per_1k", 1000,
              "output_per_1k", part_of="tokens_output", description="completion tokens spent on reasoning"),
    UsageKind("tokens_audio_output", "token", None, _TOKENS, "audio_output_per_1k", 1000, "output_per_1k",
              part_of="tokens_output", description="completion tokens of audio"),
    UsageKind("images", "image", None, 10_000, "per_image", 1, description="images generated"),
    UsageKind("characters", "character", None, _TOKENS, "per_1k_characters", 1000,
              description="characters of text turned into speech"),
    UsageKind("audio_seconds", "second", None, _SECONDS, "per_audio_second", 1,
              description="seconds of audio transcribed or generated"),
    UsageKind("compute_seconds", "second", None, _SECONDS, "per_compute_second", 1,
              description="seconds of compute of a model billed by time"),
    UsageKind("web_searches", "search", None, 100_000, "per_1k_searches", 1000,
              description="web searches made by a search tool"),
    UsageKind("credits", "credit", "total_credits", MAX_CREDITS_PER_EVENT, "per_credit", 1,
              description="credits of a credit-priced provider (Firecrawl)"),
)  # fmt: skip

KIND_NAMES: tuple[str, ...] = tuple(kind.name for kind in USAGE_KINDS)
# What an event's cost is split into: one part per kind, the per-request charge, and "unsplit" for the cost of
# events logged before costs were split by kind (so the parts always add up to the total).
COST_PARTS: tuple[str, ...] = (*KIND_NAMES, "per_request", "unsplit")
COST_COUNTERS: tuple[str, ...] = tuple(f"cost_nano_{part}" for part in COST_PARTS)
# Every rate key a price entry may carry for the kinds (the per-request charge is not a kind).
KIND_RATE_KEYS: tuple[str, ...] = tuple(kind.rate for kind in USAGE_KINDS)
TOKEN_RATE_KEYS: tuple[str, ...] = tuple(kind.rate for kind in USAGE_KINDS if kind.unit == "token")
KINDS_BY_NAME: dict[str, UsageKind] = {kind.name: kind for kind in USAGE_KINDS}
# Each whole and the parts that must fit in it, in table order.
PARTS: dict[str, tuple[str, ...]] = {
    whole: tuple(kind.name for kind in USAGE_KINDS if kind.part_of == whole)
    for whole in dict.fromkeys(kind.part_of for kind in USAGE_KINDS if kind.part_of)
}


def parts_overflow(values: dict[str, int]) -> list[tuple[str, str]]:
    """(first part, whole) for every whole whose parts add up to more than it: the part-of rule broken."""
    broken = []
    for whole, parts in PARTS.items():
        if sum(values.get(part, 0) for part in parts) > values.get(whole, 0):
            broken.append((parts[0], whole))
    return broken
