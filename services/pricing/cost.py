"""Pure cost computation: one price entry, one event's usage and its service tier in, exact USD out.

Every usage kind of ``models.usage_kinds`` is billed at its own rate: a part (cache reads, audio input...) at
the part's rate, the rest of its whole at the whole's, so each unit is billed exactly once. ``cost_usd`` never
rounds (every step runs in a context that raises rather than round); ``cost_nano`` rounds once per event,
half-even, to the integer nano-dollars that are stored and summed.
"""

from __future__ import annotations

from dataclasses import dataclass, make_dataclass
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)

from models.usage_kinds import COST_PARTS, KIND_NAMES, PARTS, USAGE_KINDS

from .file import LEGACY_RATE_KEYS, PriceEntry

NANO_PER_USD = 10**9
# Wide enough for any realistic count x rate; Inexact is trapped so a too-large input raises, never rounds.
_EXACT = Context(prec=1000, rounding=ROUND_HALF_EVEN, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow])
_ZERO = Decimal(0)
_PER = tuple(Decimal(kind.per) for kind in USAGE_KINDS)
_INDEX = {name: index for index, name in enumerate(KIND_NAMES)}
# For each kind, the positions of its parts: what is billed at its own rate is the kind less its parts.
_PART_POSITIONS = tuple(tuple(_INDEX[part] for part in PARTS.get(name, ())) for name in KIND_NAMES)


class TokenCountError(ValueError):
    """Counts that cannot describe a real event; ``field`` names the offending count."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class _Usage:
    __slots__ = ()

    def validate(self) -> None:
        """Raise :class:`TokenCountError` (a ``ValueError``) naming the first impossible count."""
        for name in _COUNT_FIELDS:
            value = getattr(self, name)
            if value.__class__ is not int:
                raise TokenCountError(name, f"must be a whole number, got {value!r}")
            if value < 0:
                raise TokenCountError(name, f"must not be negative, got {value}")
        for whole, parts in PARTS.items():
            if sum(getattr(self, part) for part in parts) > getattr(self, whole):
                raise TokenCountError(parts[0], f"{' + '.join(parts)} exceed {whole} ({getattr(self, whole)})")


# One event's usage, a field per usage kind, and how many requests it stands for (the per-request charge).
_COUNT_FIELDS = (*KIND_NAMES, "requests")
TokenCounts = make_dataclass(
    "TokenCounts",
    [*((name, int, 0) for name in KIND_NAMES), ("requests", int, 1)],
    bases=(_Usage,),
    frozen=True,
    slots=True,
)
TokenCounts.__module__ = __name__


@dataclass(frozen=True)
class Rates:
    """What prices one event: USD per quoted unit of each kind (``USAGE_KINDS`` order) and per request."""

    per_kind: tuple[Decimal, ...]
    per_request: Decimal
    long_context: bool  # the prompt passed the entry's threshold, so its long-context rates apply
    tier: str  # the service tier whose prices applied: "standard" when the entry has none for the one asked

    def of(self, kind: str) -> Decimal:
        return self.per_kind[_INDEX[kind]]

    # The token convention's names, as callers have always read them.
    input = property(lambda self: self.of("tokens_input"))
    output = property(lambda self: self.of("tokens_output"))
    cached_input = property(lambda self: self.of("tokens_cached"))
    cache_write = property(lambda self: self.of("tokens_cache_write"))
    reasoning = property(lambda self: self.of("tokens_reasoning"))


def _rate_table(entry: PriceEntry, use_long: bool) -> dict[str, Decimal | None]:
    rates: dict[str, Decimal | None] = {key: getattr(entry, key) for key in LEGACY_RATE_KEYS}
    rates.update(entry.kind_rates)
    long = entry.long_context
    if use_long and long is not None:
        rates.update({key: value for key in LEGACY_RATE_KEYS if (value := getattr(long, key, None)) is not None})
        rates.update(long.kind_rates)
    return rates


def rates_for(entry: PriceEntry, tokens_input: int, tier: str = "standard") -> Rates:
    """The rates that price a request with this prompt size in this tier; the long tier prices the whole request.

    A tier the entry has prices for replaces the rates it names and scales the rest by its multiplier; a tier it
    has none for is priced at standard (and ``Rates.tier`` says so).
    """
    threshold = entry.long_context_threshold
    use_long = entry.long_context is not None and threshold is not None and tokens_input > threshold
    rates = _rate_table(entry, use_long)
    applied = "standard"
    tier_rates = dict(entry.tiers).get(tier) if tier != "standard" else None
    if tier_rates is not None:
        applied = tier
        if tier_rates.multiplier is not None:
            with localcontext(_EXACT):
                rates = {k: None if v is None else v * tier_rates.multiplier for k, v in rates.items()}
        rates.update(tier_rates.rates)
    per_kind = []
    for kind in USAGE_KINDS:
        rate = rates.get(kind.rate)
        if rate is None and kind.fallback is not None:
            rate = rates.get(kind.fallback)
        per_kind.append(_ZERO if rate is None else rate)
    return Rates(tuple(per_kind), rates.get("per_request") or _ZERO, use_long, applied)


def billed_units(counts: TokenCounts) -> tuple[int, ...]:
    """Units of each kind billed at that kind's rate: the kind less its parts (each billed at its own)."""
    values = tuple(getattr(counts, name) for name in KIND_NAMES)
    return tuple(
        value - sum(values[p] for p in parts) if parts else value
        for value, parts in zip(values, _PART_POSITIONS, strict=True)
    )


def cost_usd(entry: PriceEntry, counts: TokenCounts, tier: str = "standard") -> Decimal:
    """Exact, unrounded USD cost of one event."""
    counts.validate()
    if entry.unit == "free":
        return _ZERO
    rates = rates_for(entry, counts.tokens_input, tier)
    with localcontext(_EXACT):
        total = sum(
            (units * rate / per for units, rate, per in zip(billed_units(counts), rates.per_kind, _PER, strict=True)),
            _ZERO,
        )
        return +(total + rates.per_request * counts.requests)


def cost_nano(entry: PriceEntry, counts: TokenCounts, tier: str = "standard") -> int:
    """The event's cost in integer nano-USD: ``cost_usd * 1e9`` rounded half-even, once.

    Computed in integer atto-USD when the entry's rates are whole atto-USD amounts per unit (every shipped price
    is): the same exact value as the Decimal path at a fraction of its cost, which matters because every
    logged event is priced.
    """
    atto_rates = _atto_rates(entry, counts.tokens_input, tier)
    if atto_rates is None:
        with localcontext(_EXACT):
            return int((cost_usd(entry, counts, tier) * NANO_PER_USD).to_integral_value(rounding=ROUND_HALF_EVEN))
    counts.validate()
    if entry.unit == "free":
        return 0
    per_kind, per_request = atto_rates
    atto = counts.requests * per_request
    for units, rate in zip(billed_units(counts), per_kind, strict=True):
        if units:
            atto += units * rate
    return _half_even_nano(atto)


def cost_nano_by_kind(entry: PriceEntry, counts: TokenCounts, tier: str = "standard") -> tuple[int, dict[str, int]]:
    """``cost_nano`` and its split over ``COST_PARTS`` in whole nano-USD, adding up exactly to it.

    Each part's exact share is cut to whole nano-USD and the nano-USD those cuts lost go to the parts that lost
    the most (largest remainder, ties in table order), so the parts of every event, and of every rollup, sum to
    its cost. Parts that cost nothing are left out.
    """
    atto_rates = _atto_rates(entry, counts.tokens_input, tier)
    if entry.unit == "free":
        counts.validate()
        return 0, {}
    if atto_rates is None:
        counts.validate()
        rates = rates_for(entry, counts.tokens_input, tier)
        with localcontext(_EXACT):
            units = billed_units(counts)
            exact = [u * r / p * NANO_PER_USD for u, r, p in zip(units, rates.per_kind, _PER, strict=True)]
            exact.append(rates.per_request * counts.requests * NANO_PER_USD)
            total = int(sum(exact, _ZERO).to_integral_value(rounding=ROUND_HALF_EVEN))
            floors = [int(value) for value in exact]  # non-negative, so int() is the floor
            remainders = [value - floor for value, floor in zip(exact, floors, strict=True)]
    else:
        counts.validate()
        per_kind, per_request = atto_rates
        atto = [units * rate for units, rate in zip(billed_units(counts), per_kind, strict=True)]
        atto.append(counts.requests * per_request)
        total = _half_even_nano(sum(atto))
        floors = [value // _ATTO_PER_NANO for value in atto]
        remainders = [value % _ATTO_PER_NANO for value in atto]
    for index in sorted(range(len(floors)), key=lambda i: -remainders[i])[: total - sum(floors)]:
        floors[index] += 1
    return total, {part: nano for part, nano in zip(COST_PARTS, floors, strict=False) if nano}


def _half_even_nano(atto: int) -> int:
    nano, rest = divmod(atto, _ATTO_PER_NANO)
    if rest * 2 > _ATTO_PER_NANO or (rest * 2 == _ATTO_PER_NANO and nano % 2):
        nano += 1
    return nano


_ATTO_PER_NANO = 10**9
_ATTO_PER_USD = 10**18
_AttoRates = tuple[tuple[int, ...], int]  # atto-USD per unit of each kind, per request
# (id(entry), long, tier) -> (entry, rates); the entry is kept so its id cannot be reused.
_ATTO_CACHE: dict[tuple[int, bool, str], tuple[PriceEntry, _AttoRates | None]] = {}
_ATTO_CACHE_LIMIT = 4096


def _atto_rates(entry: PriceEntry, tokens_input: int, tier: str) -> _AttoRates | None:
    """The entry's rates in whole atto-USD per unit and per request, or None if one is finer than that."""
    threshold = entry.long_context_threshold
    use_long = entry.long_context is not None and threshold is not None and tokens_input > threshold
    key = (id(entry), use_long, tier)
    cached = _ATTO_CACHE.get(key)
    if cached is None or cached[0] is not entry:
        if len(_ATTO_CACHE) >= _ATTO_CACHE_LIMIT:
            _ATTO_CACHE.clear()  # price books are few; this only bounds a process that reloads them often
        cached = _ATTO_CACHE[key] = (entry, _to_atto(rates_for(entry, tokens_input, tier)))
    return cached[1]


def _to_atto(rates: Rates) -> _AttoRates | None:
    with localcontext(_EXACT):
        try:
            per_kind = [rate * _ATTO_PER_USD / per for rate, per in zip(rates.per_kind, _PER, strict=True)]
        except Inexact:
            return None
        per_request = rates.per_request * _ATTO_PER_USD
        scaled = [*per_kind, per_request]
        if any(value != value.to_integral_value() for value in scaled):
            return None
        return tuple(int(value) for value in per_kind), int(per_request)


def nano_to_usd(nano: int) -> Decimal:
    """Exact USD for an integer nano-USD amount."""
    return Decimal(nano).scaleb(-9, context=_EXACT)
