"""Integer nano-USD of one event: the path every logged event takes, equal to the Decimal definition in ``cost``.

An entry's rates for a service tier are turned, once, into whole atto-USD per unit (every shipped price is a
whole number of them) and into a small function that prices one event with them: it reads the counts of the
kinds the entry bills (and the parts of each whole it bills), computes each part's cost and the total as their
sum, and keeps the parts that cost something. Where every rate is a whole number of nano-USD per unit (142 of the
144 shipped entries) nothing is rounded at all; otherwise each part is cut to whole nano-USD and the nano-USD
the cuts lost go to the parts that lost most, as ``cost.exact_nano_by_kind`` defines. An entry with a rate finer
than an atto-USD per unit is priced by ``cost`` in Decimal.

The function is generated as straight-line Python rather than a loop over the table of kinds: most of an event's
15 counts are zero, and on the benchmark's machine a loop (or ``map``/``compress`` pipelines) over them cost
~2.5 µs of a row's pricing where the generated code costs ~0.6 µs (issue 9's figure: at most 2 µs an event,
lookup included). Its source holds only kind names from ``models.usage_kinds`` and integers, never text from a
price file; ``EntryPricer.source`` shows it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, Inexact, localcontext
from operator import mul

from models.ai_usage import ServiceTier
from models.usage_kinds import COST_PARTS, KIND_NAMES, PARTS, USAGE_KINDS

from .cost import EXACT, TokenCounts, checked_values, exact_nano, exact_nano_by_kind, rates_for
from .entry import PriceEntry, applied_tier, price_version

_ATTO_PER_NANO = 10**9
_HALF_NANO = _ATTO_PER_NANO // 2
_ATTO_PER_USD = 10**18
_COUNT_FIELDS = (*KIND_NAMES, "requests")
_PER = tuple(Decimal(kind.per) for kind in USAGE_KINDS)
_INDEX = {name: index for index, name in enumerate(KIND_NAMES)}
_WHOLE_OF = {_INDEX[part]: _INDEX[whole] for whole, parts in PARTS.items() for part in parts}
# Prices one event: (counts by kind name, requests) -> (cost_nano, its parts by name).
Split = Callable[..., tuple[int, dict[str, int]]]


def cost_nano(entry: PriceEntry, counts: TokenCounts, tier: str = "standard") -> int:
    """The event's cost in integer nano-USD: ``cost_usd * 1e9`` rounded half-even, once."""
    values = checked_values(counts)
    net = entry_pricer(entry, tier).net(values[0])
    if net is None:
        return exact_nano(entry, values, tier)
    # Parts are billed at "part rate - whole rate" on top of the whole at its own, so one dot product is exact.
    return _half_even_nano(sum(map(mul, values, net)))


def cost_nano_by_kind(entry: PriceEntry, counts: TokenCounts, tier: str = "standard") -> tuple[int, dict[str, int]]:
    """``cost_nano`` and its split over ``COST_PARTS`` in whole nano-USD, adding up exactly to it.

    Each part's exact share is cut to whole nano-USD and the nano-USD those cuts lost go to the parts that lost
    the most (largest remainder, ties in table order), so the parts of every event, and of every rollup, sum to
    its cost. Parts that cost nothing are left out.
    """
    return cost_nano_by_kind_validated(entry, checked_values(counts), tier)


def cost_nano_by_kind_validated(
    entry: PriceEntry, values: tuple[int, ...], tier: str = "standard"
) -> tuple[int, dict[str, int]]:
    """``cost_nano_by_kind`` of counts already validated (a ``UsageEvent`` checked them: whole, non-negative,
    parts within their wholes), given in ``KIND_NAMES`` order then the requests; they are not checked again."""
    return entry_pricer(entry, tier).cost_nano_by_kind(dict(zip(_COUNT_FIELDS, values, strict=True)), values[-1])


class EntryPricer:
    """How one entry prices one service tier, worked out once because every logged event is priced: the tier
    whose prices apply, the price version, and the function that prices an event. Get one with
    :func:`entry_pricer`, which caches it.

    ``cost_nano_by_kind(usage, requests=1)`` takes validated counts by kind name (a ``UsageEvent``'s
    ``__dict__``: whole, non-negative, parts within their wholes; they are not checked again) and returns
    ``cost_nano`` and its split, exactly as ``cost_nano_by_kind`` does.
    """

    __slots__ = ("_nets", "_threshold", "cost_nano_by_kind", "entry", "source", "tier", "version")
    cost_nano_by_kind: Split

    def __init__(self, entry: PriceEntry, tier: str) -> None:
        self.entry = entry  # kept, so its id (the cache key) cannot be reused while it is cached
        self.tier = ServiceTier(applied_tier(entry, tier))  # stored as the row's price_tier
        self.version = price_version(entry)
        free = entry.unit == "free"  # a free entry costs nothing whatever rates it carries
        threshold = entry.long_context_threshold if entry.long_context is not None and not free else None
        self._threshold = threshold
        sides = [(0,) * len(_COUNT_FIELDS) if free else _to_atto(entry, 0, tier)]
        if threshold is not None:  # above it, the long-context rates price the whole request
            sides.append(_to_atto(entry, threshold + 1, tier))
        self._nets = [None if gross is None else _net(gross) for gross in sides]
        sources = [None if gross is None else _source(gross) for gross in sides]
        self.source = "\n".join(source for source in sources if source is not None)
        splits = [_exact(entry, tier) if source is None else _compiled(source) for source in sources]
        self.cost_nano_by_kind = splits[0] if threshold is None else _by_prompt_size(threshold, *splits)

    def net(self, tokens_input: int) -> tuple[int, ...] | None:
        """Atto-USD per count for this prompt size (a part's rate less its whole's), or None if a rate is finer."""
        threshold = self._threshold
        return self._nets[1] if threshold is not None and tokens_input > threshold else self._nets[0]


# (id(entry), tier asked) -> its pricer, and the standard tier's by id(entry) alone: most events are standard,
# and a ServiceTier's hash is Python code. A pricer keeps its entry, so an id in here is never reused.
_PRICERS: dict[tuple[int, str], EntryPricer] = {}
_STANDARD: dict[int, EntryPricer] = {}
_PRICERS_LIMIT = 4096


def entry_pricer(entry: PriceEntry, tier: str = "standard") -> EntryPricer:
    """The cached :class:`EntryPricer` of an entry and the service tier an event asked for."""
    standard = tier == "standard"
    pricer = _STANDARD.get(id(entry)) if standard else _PRICERS.get((id(entry), tier))
    if pricer is None or pricer.entry is not entry:
        if len(_PRICERS) + len(_STANDARD) >= _PRICERS_LIMIT:
            _PRICERS.clear()  # price books are few; this only bounds a process that reloads them often
            _STANDARD.clear()
        pricer = EntryPricer(entry, tier)
        if standard:
            _STANDARD[id(entry)] = pricer
        else:
            _PRICERS[(id(entry), tier)] = pricer
    return pricer


def _to_atto(entry: PriceEntry, tokens_input: int, tier: str) -> tuple[int, ...] | None:
    """The rates for this prompt size in whole atto-USD per unit (kinds, then per request), or None if one is
    finer than that."""
    rates = rates_for(entry, tokens_input, tier)
    with localcontext(EXACT):  # exact (a quotient that needs rounding raises Inexact), then checked whole
        try:
            scaled = [rate * _ATTO_PER_USD / per for rate, per in zip(rates.per_kind, _PER, strict=True)]
        except Inexact:
            return None
        scaled.append(rates.per_request * _ATTO_PER_USD)
        if any(value != value.to_integral_value() for value in scaled):
            return None
    return tuple(int(value) for value in scaled)


def _net(gross: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(rate - gross[_WHOLE_OF[index]] if index in _WHOLE_OF else rate for index, rate in enumerate(gross))


def _source(gross: tuple[int, ...]) -> str:
    """The function that prices an event at these rates (atto-USD per unit of each kind, then per request).

    Each part that has a rate, in table order, costs ``units * rate`` when it has units; a whole's units are what
    its parts leave. Rates that are all whole nano-USD are written in nano-USD, and the total is the parts' sum.
    Otherwise they are in atto-USD: each part is cut to whole nano-USD, noting what the cut lost and the part's
    place in the table, and ``_settle`` rounds the total and hands the nano-USD lost to the parts that lost most.
    """
    billed = [index for index, rate in enumerate(gross) if rate]  # indices into COST_PARTS: kinds, "per_request"
    in_nano = not any(gross[index] % _ATTO_PER_NANO for index in billed)
    kinds = [COST_PARTS[index] for index in billed if index < len(KIND_NAMES)]
    read = [kind for kind in KIND_NAMES if kind in kinds or any(kind in PARTS.get(whole, ()) for whole in kinds)]
    lines = ["def cost_nano_by_kind(usage, requests=1):", "    parts = {}", "    total = 0"]
    lines += [] if in_nano else ["    losses = []"]
    lines += [f"    {kind} = usage[{kind!r}]" for kind in read if kind not in PARTS]  # a whole is read once, below
    for index in billed:
        part = COST_PARTS[index]
        units = "requests" if part == "per_request" else part
        if part in PARTS:
            lines.append(f"    units = usage[{part!r}] - {' - '.join(PARTS[part])}")
            units = "units"
        lines.append(f"    if {units}:")
        if in_nano:
            lines += [
                f"        parts[{part!r}] = cut = {units} * {gross[index] // _ATTO_PER_NANO}",
                "        total += cut",
            ]
        else:
            lines += [
                f"        cut = {units} * {gross[index]}",
                "        total += cut",
                f"        parts[{part!r}], lost = divmod(cut, {_ATTO_PER_NANO})",
                "        if lost:",
                f"            losses.append((-lost, {index}, {part!r}))",
            ]
    lines.append("    return total, parts" if in_nano else "    return _settle(total, parts, losses)")
    return "\n".join(lines) + "\n"


def _compiled(source: str) -> Split:
    namespace = {"_settle": _settle}
    exec(compile(source, "<services.pricing.nano>", "exec"), namespace)  # our own source: see _source
    return namespace["cost_nano_by_kind"]  # type: ignore[return-value]


# The kinds' names are written into the generated source as variable names.
_OWN_NAMES = ("usage", "requests", "parts", "total", "losses", "units", "cut", "lost", "divmod", "_settle")
if not all(name.isidentifier() and name not in _OWN_NAMES for name in COST_PARTS):
    raise RuntimeError("a usage kind's name must be a Python identifier other than the generated code's own")


def _settle(atto: int, floors: dict[str, int], losses: list[tuple[int, int, str]]) -> tuple[int, dict[str, int]]:
    """The total in nano-USD (half-even) and the parts cut to whole nano-USD, with the nano-USD the cuts lost
    handed to the parts that lost most (``losses``: minus what each lost, its table index, its name), one each."""
    nano = _half_even_nano(atto)
    short = nano - sum(floors.values())  # at most the parts with a remainder: each lost less than a nano-USD
    if short == 1:
        floors[min(losses)[2]] += 1
    elif short:
        losses.sort()
        for _, _, part in losses[:short]:
            floors[part] += 1
    if 0 in floors.values():  # a part that cost less than a nano-USD and was handed none
        floors = {part: value for part, value in floors.items() if value}
    return nano, floors


def _exact(entry: PriceEntry, tier: str) -> Split:
    def split(usage: Mapping[str, int], requests: int = 1) -> tuple[int, dict[str, int]]:
        return exact_nano_by_kind(entry, (*(usage[name] for name in KIND_NAMES), requests), tier)

    return split


def _by_prompt_size(threshold: int, below: Split, above: Split) -> Split:
    def split(usage: Mapping[str, int], requests: int = 1) -> tuple[int, dict[str, int]]:
        return (above if usage["tokens_input"] > threshold else below)(usage, requests)

    return split


def _half_even_nano(atto: int) -> int:
    nano, rest = divmod(atto, _ATTO_PER_NANO)
    if rest > _HALF_NANO or (rest == _HALF_NANO and nano & 1):
        nano += 1
    return nano
