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
    unit: str  # what one of it is: a token, a credit...
    total_field: str | None  # the summaries' own field for its total (the replaced service's names), if any
    bound: int  # the most one event may carry
    part_of: str | None = None  # the kind this one is a part of
    description: str = ""


USAGE_KINDS: tuple[UsageKind, ...] = (
    UsageKind("tokens_input", "token", "total_input_tokens", MAX_TOKENS_PER_EVENT,
              description="the whole prompt, cache reads and writes included (OpenAI's convention)"),
    UsageKind("tokens_output", "token", "total_output_tokens", MAX_TOKENS_PER_EVENT,
              description="the whole completion, reasoning included"),
    UsageKind("tokens_cached", "token", "total_cached_tokens", MAX_TOKENS_PER_EVENT, part_of="tokens_input",
              description="prompt tokens read from a cache"),
    UsageKind("tokens_cache_write", "token", "total_cache_write_tokens", MAX_TOKENS_PER_EVENT,
              part_of="tokens_input", description="prompt tokens written to a cache"),
    UsageKind("tokens_reasoning", "token", "total_reasoning_tokens", MAX_TOKENS_PER_EVENT, part_of="tokens_output",
              description="completion tokens spent on reasoning"),
    UsageKind("credits", "credit", "total_credits", MAX_CREDITS_PER_EVENT,
              description="credits of a credit-priced provider (Firecrawl)"),
)  # fmt: skip

KIND_NAMES: tuple[str, ...] = tuple(kind.name for kind in USAGE_KINDS)
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
