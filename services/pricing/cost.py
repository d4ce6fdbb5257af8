"""Pure cost computation: one price entry, one event's usage and its service tier in, exact USD out.

Every usage kind of ``models.usage_kinds`` is billed at its own rate: a part (cache reads, audio input...) at
the part's rate, the rest of its whole at the whole's, so each unit is billed exactly once. ``cost_usd`` never
rounds (every step runs in a context that raises rather than round); ``cost_nano`` rounds once per event,
half-even, to the integer nano-dollars that are stored and summed.
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
from itertools import compress
from operator import attrgetter, itemgetter, mul

from models.ai_usage import nano_to_usd as nano_to_usd
from models.usage_kinds import COST_PARTS, KIND_NAMES, PARTS, USAGE_KINDS

from .file import LEGACY_RATE_KEYS, PriceEntry

NANO_PER_USD = 10**9
# Wide enough for any realistic count x rate; Inexact is trapped so a too-large input raises, never rounds.
_EXACT = Context(prec=1000, rounding=ROUND_HALF_EVEN, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow])
_ZERO = Decimal(0)
_PER = tuple(Decimal(kind.per) for kind in USAGE_KINDS)
_INDEX = {name: index for index, name in enumerate(KIND_NAMES)}
# An event's counts as one tuple: each kind in table order, then the requests (billed at the per-request rate).
_COUNT_FIELDS = (*KIND_NAMES, "requests")
_values_of = attrgetter(*_COUNT_FIELDS)
_POSITIONS = range(len(_COUNT_FIELDS))
_INT = {int}


def _getter(positions: tuple[int, ...]) -> Callable[[tuple[int, ...]], tuple[int, ...]]:
    if len(positions) == 1:  # itemgetter of one index returns the item, not a tuple
        return lambda values, at=positions[0]: (values[at],)
    return itemgetter(*positions)


# Each whole's position and a getter of its parts: what is billed at the whole's rate is the whole less its parts.
_WHOLES = tuple((_INDEX[whole], _getter(tuple(_INDEX[part] for part in parts))) for whole, parts in PARTS.items())
_WHOLE_OF = {_INDEX[part]: _INDEX[whole] for whole, parts in PARTS.items() for part in parts}


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


def _checked_values(counts: TokenCounts) -> tuple[int, ...]:
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
    return _usd(entry, _checked_values(counts), tier)


def _usd(entry: PriceEntry, values: tuple[int, ...], tier: str) -> Decimal:
    if entry.unit == "free":
        return _ZERO
    rates = rates_for(entry, values[0], tier)
    billed = _billed(values)
    with localcontext(_EXACT):
        total = sum(
            (units * rate / per for units, rate, per in zip(billed[:-1], rates.per_kind, _PER, strict=True)), _ZERO
        )
        return +(total + rates.per_request * billed[-1])


def cost_nano(entry: PriceEntry, counts: TokenCounts, tier: str = "standard") -> int:
    """The event's cost in integer nano-USD: ``cost_usd * 1e9`` rounded half-even, once.

    Computed in integer atto-USD when the entry's rates are whole atto-USD amounts per unit (every shipped price
    is): the same exact value as the Decimal path at a fraction of its cost, which matters because every
    logged event is priced.
    """
    values = _checked_values(counts)
    rates = _atto_rates(entry, values[0], tier)
    if rates is None:
        with localcontext(_EXACT):
            return int((_usd(entry, values, tier) * NANO_PER_USD).to_integral_value(rounding=ROUND_HALF_EVEN))
    # Parts are billed at "part rate - whole rate" on top of the whole at its own, so one dot product is exact.
    return _half_even_nano(sum(map(mul, values, rates[0])))


def cost_nano_by_kind(entry: PriceEntry, counts: TokenCounts, tier: str = "standard") -> tuple[int, dict[str, int]]:
    """``cost_nano`` and its split over ``COST_PARTS`` in whole nano-USD, adding up exactly to it.

    Each part's exact share is cut to whole nano-USD and the nano-USD those cuts lost go to the parts that lost
    the most (largest remainder, ties in table order), so the parts of every event, and of every rollup, sum to
    its cost. Parts that cost nothing are left out.
    """
    return cost_nano_by_kind_validated(entry, _checked_values(counts), tier)


def cost_nano_by_kind_validated(
    entry: PriceEntry, values: tuple[int, ...], tier: str = "standard"
) -> tuple[int, dict[str, int]]:
    """``cost_nano_by_kind`` of counts already validated (a ``UsageEvent`` checked them: whole, non-negative,
    parts within their wholes), given in ``KIND_NAMES`` order then the requests; they are not checked again."""
    rates = _atto_rates(entry, values[0], tier)
    billed = _billed(values)
    if rates is None:
        per_kind = rates_for(entry, values[0], tier)
        with localcontext(_EXACT):  # exact nano-USD amounts, cut at whole nano-USD
            cuts = [u * r / p * NANO_PER_USD for u, r, p in zip(billed[:-1], per_kind.per_kind, _PER, strict=True)]
            cuts.append(billed[-1] * per_kind.per_request * NANO_PER_USD)
            total = int(sum(cuts, _ZERO).to_integral_value(rounding=ROUND_HALF_EVEN))
            shares = [divmod(cut, 1) for cut in cuts]  # non-negative: whole nano-USD, and the fraction cut off
        losses = [(-lost, index) for index, (_, lost) in enumerate(shares) if lost]
        return _settle(total, {index: int(nano) for index, (nano, _) in enumerate(shares)}, losses)
    cuts = list(map(mul, billed, rates[1]))
    total = _half_even_nano(sum(cuts))
    # Inline for the integer path (every logged event takes it): only the parts that cost something are cut.
    floors = {}
    losses = []
    for index in compress(_POSITIONS, cuts):
        floors[index], lost = divmod(cuts[index], _ATTO_PER_NANO)
        if lost:
            losses.append((-lost, index))
    return _settle(total, floors, losses)


def _settle(total: int, floors: dict[int, int], losses: list[tuple[int | Decimal, int]]) -> tuple[int, dict[str, int]]:
    """Give the nano-USD the cuts lost to the parts that lost most (ties in table order); name the parts."""
    short = total - sum(floors.values())
    if short:  # at most the number of parts with a remainder, since each lost less than one nano-USD
        for _, index in sorted(losses)[:short]:
            floors[index] += 1
    return total, {COST_PARTS[index]: nano for index, nano in floors.items() if nano}


def _half_even_nano(atto: int) -> int:
    nano, rest = divmod(atto, _ATTO_PER_NANO)
    if rest * 2 > _ATTO_PER_NANO or (rest * 2 == _ATTO_PER_NANO and nano % 2):
        nano += 1
    return nano


_ATTO_PER_NANO = 10**9
_ATTO_PER_USD = 10**18
# Atto-USD per unit billed: "net" (a part's rate less its whole's, so a dot product with the counts is the
# cost) and "gross" (each rate as it is, for units billed at it), both with the per-request rate last.
_AttoRates = tuple[tuple[int, ...], tuple[int, ...]]
# (id(entry), tier) -> (entry, long-context threshold, rates below it, rates above it); the entry is kept so its
# id cannot be reused, and None stands for rates finer than an atto-USD (priced in Decimal).
_ATTO_CACHE: dict[tuple[int, str], tuple[PriceEntry, int | None, _AttoRates | None, _AttoRates | None]] = {}
_ATTO_CACHE_LIMIT = 4096
_FREE: _AttoRates = ((0,) * len(_COUNT_FIELDS),) * 2


def _atto_rates(entry: PriceEntry, tokens_input: int, tier: str) -> _AttoRates | None:
    """The entry's rates in whole atto-USD per unit, or None if one is finer than that."""
    cached = _ATTO_CACHE.get((id(entry), tier))
    if cached is None or cached[0] is not entry:
        if len(_ATTO_CACHE) >= _ATTO_CACHE_LIMIT:
            _ATTO_CACHE.clear()  # price books are few; this only bounds a process that reloads them often
        if entry.unit == "free":  # a free entry costs nothing whatever rates it carries
            cached = (entry, None, _FREE, _FREE)
        else:
            threshold = _long_threshold(entry)
            long = _to_atto(_rates(entry, True, tier)) if threshold is not None else None
            cached = (entry, threshold, _to_atto(_rates(entry, False, tier)), long)
        _ATTO_CACHE[(id(entry), tier)] = cached
    threshold = cached[1]
    return cached[3] if threshold is not None and tokens_input > threshold else cached[2]


def _to_atto(rates: Rates) -> _AttoRates | None:
    with localcontext(_EXACT):
        try:
            scaled = [rate * _ATTO_PER_USD / per for rate, per in zip(rates.per_kind, _PER, strict=True)]
        except Inexact:
            return None
        scaled.append(rates.per_request * _ATTO_PER_USD)
        if any(value != value.to_integral_value() for value in scaled):
            return None
    gross = tuple(int(value) for value in scaled)
    net = tuple(rate - gross[_WHOLE_OF[index]] if index in _WHOLE_OF else rate for index, rate in enumerate(gross))
    return net, gross
