"""Pure cost computation: one price entry and one event's counts in, exact USD out.

``cost_usd`` never rounds (every step runs in a context that raises rather than round); ``cost_nano``
rounds once per event, half-even, to the integer nano-dollars that are stored and summed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
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

from .file import PriceEntry

NANO_PER_USD = 10**9
# Wide enough for any realistic count x rate; Inexact is trapped so a too-large input raises, never rounds.
_EXACT = Context(prec=1000, rounding=ROUND_HALF_EVEN, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow])
_THOUSAND = Decimal(1000)


class TokenCountError(ValueError):
    """Counts that cannot describe a real event; ``field`` names the offending count."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class TokenCounts:
    tokens_input: int = 0  # whole prompt, including cache reads and cache writes (OpenAI convention)
    tokens_output: int = 0  # including reasoning
    tokens_cached: int = 0  # part of tokens_input read from cache
    tokens_cache_write: int = 0  # part of tokens_input written to cache
    tokens_reasoning: int = 0  # part of tokens_output
    credits: int = 0
    requests: int = 1

    def validate(self) -> None:
        """Raise :class:`TokenCountError` (a ``ValueError``) naming the first impossible count."""
        for name in _COUNT_FIELDS:  # a plain tuple: dataclasses.fields() cost more than the checks
            value = getattr(self, name)
            if value.__class__ is not int:
                raise TokenCountError(name, f"must be a whole number, got {value!r}")
            if value < 0:
                raise TokenCountError(name, f"must not be negative, got {value}")
        if self.tokens_cached + self.tokens_cache_write > self.tokens_input:
            raise TokenCountError(
                "tokens_cached",
                f"tokens_cached ({self.tokens_cached}) + tokens_cache_write "
                f"({self.tokens_cache_write}) exceed tokens_input ({self.tokens_input})",
            )
        if self.tokens_reasoning > self.tokens_output:
            raise TokenCountError(
                "tokens_reasoning",
                f"tokens_reasoning ({self.tokens_reasoning}) exceeds tokens_output ({self.tokens_output})",
            )


_COUNT_FIELDS = tuple(f.name for f in fields(TokenCounts))


@dataclass(frozen=True)
class TokenRates:
    """USD per 1K tokens for each kind of token, as they apply to one event."""

    input: Decimal
    output: Decimal
    cached_input: Decimal
    cache_write: Decimal
    reasoning: Decimal
    long_context: bool


def rates_for(entry: PriceEntry, tokens_input: int) -> TokenRates:
    """The rates that price a request with this prompt size; the long tier applies to the whole request."""
    long = entry.long_context
    use_long = (
        long is not None and entry.long_context_threshold is not None and tokens_input > entry.long_context_threshold
    )

    def pick(name: str) -> Decimal | None:
        tier = getattr(long, name) if use_long else None
        return tier if tier is not None else getattr(entry, name)

    input_rate = pick("input_per_1k") or Decimal(0)
    output_rate = pick("output_per_1k") or Decimal(0)
    cached, write, reasoning = pick("cached_input_per_1k"), pick("cache_write_per_1k"), pick("reasoning_per_1k")
    return TokenRates(
        input=input_rate,
        output=output_rate,
        cached_input=input_rate if cached is None else cached,
        cache_write=input_rate if write is None else write,
        reasoning=output_rate if reasoning is None else reasoning,
        long_context=use_long,
    )


def _billed_tokens(counts: TokenCounts) -> tuple[int, int, int, int, int]:
    """Tokens billed at the input, output, cached-read, cache-write and reasoning rate, in that order.

    The token convention in one place: cache reads and writes are parts of ``tokens_input``, reasoning is
    part of ``tokens_output``, so each token is billed at exactly one rate.
    """
    return (
        counts.tokens_input - counts.tokens_cached - counts.tokens_cache_write,
        counts.tokens_output - counts.tokens_reasoning,
        counts.tokens_cached,
        counts.tokens_cache_write,
        counts.tokens_reasoning,
    )


def cost_usd(entry: PriceEntry, counts: TokenCounts) -> Decimal:
    """Exact, unrounded USD cost of one event."""
    counts.validate()
    if entry.unit == "free":
        return Decimal(0)
    rates = rates_for(entry, counts.tokens_input)
    uncached, plain_output, cached, written, reasoning = _billed_tokens(counts)
    with localcontext(_EXACT):
        per_thousand = (
            uncached * rates.input
            + plain_output * rates.output
            + cached * rates.cached_input
            + written * rates.cache_write
            + reasoning * rates.reasoning
        )
        total = per_thousand / _THOUSAND
        if entry.per_request is not None:
            total += entry.per_request * counts.requests
        if entry.per_credit is not None:
            total += entry.per_credit * counts.credits
        return +total


def cost_nano(entry: PriceEntry, counts: TokenCounts) -> int:
    """The event's cost in integer nano-USD: ``cost_usd * 1e9`` rounded half-even, once.

    Computed in integer atto-USD when the entry's rates are whole atto-USD amounts (every shipped price
    is): the same exact value as the Decimal path at a fraction of its cost, which matters because every
    logged event is priced.
    """
    rates = _atto_rates(entry, counts.tokens_input)
    if rates is None:
        with localcontext(_EXACT):
            return int((cost_usd(entry, counts) * NANO_PER_USD).to_integral_value(rounding=ROUND_HALF_EVEN))
    counts.validate()
    if entry.unit == "free":
        return 0
    per_input, per_output, per_cached, per_write, per_reasoning, per_request, per_credit = rates
    uncached, plain_output, cached, written, reasoning = _billed_tokens(counts)
    atto = (
        uncached * per_input
        + plain_output * per_output
        + cached * per_cached
        + written * per_write
        + reasoning * per_reasoning
        + counts.requests * per_request
        + counts.credits * per_credit
    )
    nano, rest = divmod(atto, _ATTO_PER_NANO)
    if rest * 2 > _ATTO_PER_NANO or (rest * 2 == _ATTO_PER_NANO and nano % 2):  # half-even
        nano += 1
    return nano


_ATTO_PER_NANO = 10**9
_AttoRates = tuple[int, int, int, int, int, int, int]  # input, output, cached, cache write, reasoning, request, credit
# id(entry) -> (entry, base rates, long-context rates); the entry is kept so its id cannot be reused.
_ATTO_CACHE: dict[int, tuple[PriceEntry, _AttoRates | None, _AttoRates | None]] = {}
_ATTO_CACHE_LIMIT = 4096


def _atto_rates(entry: PriceEntry, tokens_input: int) -> _AttoRates | None:
    """The entry's rates in whole atto-USD (per token, per request, per credit), or None if one is finer."""
    threshold = entry.long_context_threshold
    cached = _ATTO_CACHE.get(id(entry))
    if cached is None or cached[0] is not entry:
        if len(_ATTO_CACHE) >= _ATTO_CACHE_LIMIT:
            _ATTO_CACHE.clear()  # price books are few; this only bounds a process that reloads them often
        long = _to_atto(entry, threshold + 1) if threshold is not None and entry.long_context is not None else None
        cached = _ATTO_CACHE[id(entry)] = (entry, _to_atto(entry, 0), long)
    use_long = cached[2] is not None and threshold is not None and tokens_input > threshold
    return cached[2] if use_long else cached[1]


def _to_atto(entry: PriceEntry, tokens_input: int) -> _AttoRates | None:
    rates = rates_for(entry, tokens_input)
    per_token = (rates.input, rates.output, rates.cached_input, rates.cache_write, rates.reasoning)
    with localcontext(_EXACT):
        scaled = [rate * 10**15 for rate in per_token]  # USD per 1K tokens -> atto-USD per token
        scaled += [(rate or Decimal(0)) * 10**18 for rate in (entry.per_request, entry.per_credit)]
        if any(value != value.to_integral_value() for value in scaled):
            return None
        return tuple(int(value) for value in scaled)  # type: ignore[return-value]


def nano_to_usd(nano: int) -> Decimal:
    """Exact USD for an integer nano-USD amount."""
    return Decimal(nano).scaleb(-9, context=_EXACT)
