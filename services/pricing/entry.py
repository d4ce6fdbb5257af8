"""A price entry: one model's (or a provider default's) rates, per usage kind, long-context and service tier.

What a price file's ``[[models]]`` and ``[defaults]`` entries become once read (``file.py`` reads and checks them);
every other room of pricing takes these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal, get_args

from models.ai_usage import ServiceTier
from models.usage_kinds import KIND_RATE_KEYS, TOKEN_RATE_KEYS

PriceUnit = Literal["tokens", "request", "credit", "free"]
PRICE_UNITS: tuple[str, ...] = get_args(PriceUnit)

# The rates besides input and output that are fields of PriceEntry, and the per-token ones long context may set.
RATE_FIELDS = ("cached_input_per_1k", "cache_write_per_1k", "reasoning_per_1k", "per_request", "per_credit")
LONG_FIELDS = ("input_per_1k", "output_per_1k", "cached_input_per_1k", "cache_write_per_1k", "reasoning_per_1k")
# Rates of the usage kinds added with the table of kinds: kept in ``PriceEntry.kind_rates``, while the rates the
# file always had stay fields of their own (callers and price files name them).
KIND_ONLY_RATES = tuple(key for key in KIND_RATE_KEYS if key not in ("input_per_1k", "output_per_1k", *RATE_FIELDS))
LONG_KIND_RATES = tuple(key for key in TOKEN_RATE_KEYS if key not in LONG_FIELDS)  # long context's kind_rates
# The rates that are fields of PriceEntry (and of LongContextRates where they are per token).
LEGACY_RATE_KEYS: tuple[str, ...] = ("input_per_1k", "output_per_1k", *RATE_FIELDS)
# Every rate an entry may have; a service tier may set any of them, or scale them all.
ALL_RATE_KEYS: tuple[str, ...] = ("input_per_1k", "output_per_1k", *RATE_FIELDS, *KIND_ONLY_RATES)
SERVICE_TIERS: tuple[str, ...] = tuple(ServiceTier)


class PriceBookError(ValueError):
    """A price file or entry set is invalid; the message names the file, the entry and the field."""


@dataclass(frozen=True)
class LongContextRates:
    """USD per 1K tokens once the prompt exceeds the entry's threshold; None keeps the base rate."""

    input_per_1k: Decimal | None = None
    output_per_1k: Decimal | None = None
    cached_input_per_1k: Decimal | None = None
    cache_write_per_1k: Decimal | None = None
    reasoning_per_1k: Decimal | None = None
    kind_rates: tuple[tuple[str, Decimal], ...] = ()  # the other token kinds' rates (1h writes, audio, image)


@dataclass(frozen=True)
class TierRates:
    """A service tier's prices: explicit rates, and a multiplier of the standard rates for the rest."""

    multiplier: Decimal | None = None
    rates: tuple[tuple[str, Decimal], ...] = ()


@dataclass(frozen=True)
class PriceEntry:
    model_id: str  # canonical "provider/name", e.g. "anthropic/claude-3.5-sonnet"
    provider: str
    unit: PriceUnit
    input_per_1k: Decimal  # USD per 1K tokens (0 for free / per-request-only / credit)
    output_per_1k: Decimal
    cached_input_per_1k: Decimal | None = None  # cache read; None -> input price
    cache_write_per_1k: Decimal | None = None  # None -> input price
    reasoning_per_1k: Decimal | None = None  # None -> output price
    per_request: Decimal | None = None
    per_credit: Decimal | None = None
    long_context_threshold: int | None = None  # prompt tokens above which `long_context` prices the request
    long_context: LongContextRates | None = None
    kind_rates: tuple[tuple[str, Decimal], ...] = ()  # rates of the newer usage kinds (per image, per second...)
    tiers: tuple[tuple[str, TierRates], ...] = ()  # batch / flex / priority prices, when the provider has them
    effective_from: datetime | None = None  # UTC; None = since forever
    contracted: bool = False  # contracted rates apply at every timestamp
    aliases: tuple[str, ...] = ()
    source: str = ""
    source_date: date | None = None
    is_default: bool = False


def price_version(entry: PriceEntry) -> str:
    """Which version of which entry: ``model_id``, with ``@effective_from`` (UTC ISO) for a dated price."""
    if entry.effective_from is None:
        return entry.model_id
    return f"{entry.model_id}@{entry.effective_from.isoformat()}"


def applied_tier(entry: PriceEntry, tier: str) -> str:
    """The tier whose prices apply to an event of ``tier``: standard when the entry has none for it."""
    return tier if any(name == tier for name, _ in entry.tiers) else "standard"


def rate_value(rates: PriceEntry | LongContextRates | TierRates, key: str) -> Decimal | None:
    """One rate of an entry (or of its long-context or tier prices) by its price-file key; None when absent."""
    if key in LEGACY_RATE_KEYS and not isinstance(rates, TierRates):
        return getattr(rates, key, None)
    extra = rates.rates if isinstance(rates, TierRates) else rates.kind_rates
    return dict(extra).get(key)
