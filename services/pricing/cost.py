"""Pure cost computation: one price entry, one event's usage and its service tier in, exact USD out.

Every usage kind of ``models.usage_kinds`` is billed at its own rate: a part (cache reads, audio input...) at
the part's rate, the rest of its whole at the whole's, so each unit is billed exactly once. ``cost_usd`` never
rounds (every step runs in a context that raises rather than round); ``exact_nano`` rounds once per event,
half-even, to the integer nano-dollars that are stored and summed, and ``exact_nano_by_kind`` splits them over
the kinds. These Decimal functions are the definition; ``nano`` computes the same values in integers, fast,
for every logged event.
"""

from __future__ import annotations

from collections.abc import Callable
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
from operator import attrgetter, itemgetter

from models.ai_usage import nano_to_usd as nano_to_usd
from models.usage_kinds import COST_PARTS, KIND_NAMES, PARTS, USAGE_KINDS

from .entry import LEGACY_RATE_KEYS, PriceEntry

NANO_PER_USD = 10**9
# Wide enough for any realistic count x rate; Inexact is trapped so a too-large input raises, never rounds.
EXACT = Context(prec=1000, rounding=ROUND_HALF_EVEN, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow])
_ZERO = Decimal(0)
_PER = tuple(Decimal(kind.per) for kind in USAGE_KINDS)
_INDEX = {name: index for index, name in enumerate(KIND_NAMES)}
# An event's counts as one tuple: each kind in table order, then the requests (billed at the per-request rate).
_COUNT_FIELDS = (*KIND_NAMES, "requests")
_values_of = attrgetter(*_COUNT_FIELDS)
_INT = {int}


def _getter(positions: tuple[int, ...]) -> Callable[[tuple[int, ...]], tuple[int, ...]]:
    if len(positions) == 1:  # itemgetter of one index returns the item, not a tuple
        return lambda values, at=positions[0]: (values[at],)
    return itemgetter(*positions)


# Each whole's position and a getter of its parts: what is billed at the whole's rate is the whole less its parts.
_WHOLES = tuple((_INDEX[whole], _getter(tuple(_INDEX[part] for part in parts))) for whole, parts in PARTS.items())


class TokenCountError(ValueError):
    """Counts that cannot describe a real event; ``field`` names the offending count."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _valid(values: tuple[int, ...]) -> bool:
    """Whole, non-negative counts whose parts fit in their wholes: the fast check; ``validate`` says what is wrong."""
    if not set(map(type, values)) <= _INT or min(values) < 0:
        return False
    return all(sum(parts(values)) <= values[whole] for whole, parts in _WHOLES)


class _Usage:
    # The counts as a tuple (``_COUNT_FIELDS`` order) when they are valid, else None. The instance is frozen, so
    # they are checked once, when built, rather than each time they are priced.
    __slots__ = ("_checked",)

    def __post_init__(self) -> None:
        values = _values_of(self)
        object.__setattr__(self, "_checked", values if _valid(values) else None)

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
TokenCounts = make_dataclass(
    "TokenCounts",
    [*((name, int, 0) for name in KIND_NAMES), ("requests", int, 1)],
    bases=(_Usage,),
    frozen=True,
    slots=True,
)
TokenCounts.__module__ = __name__


def checked_values(counts: TokenCounts) -> tuple[int, ...]:
    """The counts as a tuple, or :class:`TokenCountError` naming the first impossible one."""
    try:
        values = counts._checked
    except AttributeError:  # a copy or an unpickled instance: built without __post_init__
        values = _values_of(counts) if _valid(_values_of(counts)) else None
    if values is None:
        counts.validate()
        raise AssertionError("unreachable: validate() raises for counts the fast check refused")
    return values  # type: ignore[no-any-return]


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


def _long_threshold(entry: PriceEntry) -> int | None:
    """The prompt size above which the entry's long-context rates apply, or None when it has none."""
    return entry.long_context_threshold if entry.long_context is not None else None


def rates_for(entry: PriceEntry, tokens_input: int, tier: str = "standard") -> Rates:
    """The rates that price a request with this prompt size in this tier; the long tier prices the whole request.

    A tier the entry has prices for replaces the rates it names and scales the rest by its multiplier; a tier it
    has none for is priced at standard (and ``Rates.tier`` says so).
    """
    threshold = _long_threshold(entry)
    return _rates(entry, threshold is not None and tokens_input > threshold, tier)


def _rates(entry: PriceEntry, use_long: bool, tier: str) -> Rates:
    rates = _rate_table(entry, use_long)
    applied = "standard"
    tier_rates = dict(entry.tiers).get(tier) if tier != "standard" else None
    if tier_rates is not None:
        applied = tier
        if tier_rates.multiplier is not None:
            with localcontext(EXACT):
                rates = {k: None if v is None else v * tier_rates.multiplier for k, v in rates.items()}
        rates.update(tier_rates.rates)
    per_kind = []
    for kind in USAGE_KINDS:
        rate = rates.get(kind.rate)
        if rate is None and kind.fallback is not None:
            rate = rates.get(kind.fallback)
        per_kind.append(_ZERO if rate is None else rate)
    return Rates(tuple(per_kind), rates.get("per_request") or _ZERO, use_long, applied)


def _billed(values: tuple[int, ...]) -> list[int]:
    """Units billed at each rate (kinds, then requests): a whole less its parts (each billed at its own)."""
    billed = list(values)
    for whole, parts in _WHOLES:
        billed[whole] -= sum(parts(values))
    return billed


def billed_units(counts: TokenCounts) -> tuple[int, ...]:
    """Units of each kind billed at that kind's rate: the kind less its parts (each billed at its own)."""
    return tuple(_billed(_values_of(counts))[: len(KIND_NAMES)])


def cost_usd(entry: PriceEntry, counts: TokenCounts, tier: str = "standard") -> Decimal:
    """Exact, unrounded USD cost of one event."""
    return _usd(entry, checked_values(counts), tier)


def _usd(entry: PriceEntry, values: tuple[int, ...], tier: str) -> Decimal:
    if entry.unit == "free":
        return _ZERO
    rates = rates_for(entry, values[0], tier)
    billed = _billed(values)
    with localcontext(EXACT):
        total = sum(
            (units * rate / per for units, rate, per in zip(billed[:-1], rates.per_kind, _PER, strict=True)), _ZERO
        )
        return +(total + rates.per_request * billed[-1])


def exact_nano(entry: PriceEntry, values: tuple[int, ...], tier: str) -> int:
    """``cost_usd`` of valid counts (``KIND_NAMES`` order, then requests) in nano-USD, rounded half-even once."""
    with localcontext(EXACT):
        return int((_usd(entry, values, tier) * NANO_PER_USD).to_integral_value(rounding=ROUND_HALF_EVEN))


def exact_nano_by_kind(entry: PriceEntry, values: tuple[int, ...], tier: str) -> tuple[int, dict[str, int]]:
    """``exact_nano`` and its split over ``COST_PARTS`` in whole nano-USD, adding up exactly to it.

    Each part's exact share is cut to whole nano-USD and the nano-USD those cuts lost go to the parts that lost
    the most (largest remainder, ties in table order), so the parts of every event, and of every rollup, sum to
    its cost. Parts that cost nothing are left out. This is the definition; ``nano`` computes the same in integers.
    """
    if entry.unit == "free":  # a free entry costs nothing whatever rates it carries
        return 0, {}
    per_kind = rates_for(entry, values[0], tier)
    billed = _billed(values)
    with localcontext(EXACT):  # exact nano-USD amounts, cut at whole nano-USD
        cuts = [u * r / p * NANO_PER_USD for u, r, p in zip(billed[:-1], per_kind.per_kind, _PER, strict=True)]
        cuts.append(billed[-1] * per_kind.per_request * NANO_PER_USD)
        total = int(sum(cuts, _ZERO).to_integral_value(rounding=ROUND_HALF_EVEN))
        shares = [divmod(cut, 1) for cut in cuts]  # non-negative: whole nano-USD, and the fraction cut off
    floors = [int(nano) for nano, _ in shares]
    short = total - sum(floors)
    if short:  # at most the number of parts with a remainder, since each lost less than one nano-USD
        for _, index in sorted((-lost, index) for index, (_, lost) in enumerate(shares) if lost)[:short]:
            floors[index] += 1
    return total, {COST_PARTS[index]: nano for index, nano in enumerate(floors) if nano}
