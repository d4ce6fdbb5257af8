"""The counters every rollup row holds: requests, usage by kind, exact money, the cost split and latency.

One row of ``COUNTER_FIELDS`` per counter; ``moved_counters`` is what one event adds, as (position, amount) pairs
of the few counters it moves.
"""

from __future__ import annotations

from dataclasses import make_dataclass
from operator import add, attrgetter

from models.ai_usage import FREE_PRICE_RULES, AIUsageLog
from models.latency import LATENCY_COUNTERS, latency_bucket
from models.usage_kinds import COST_COUNTERS, COST_PARTS, KIND_NAMES


class _CounterSum:
    """Additive totals over a set of events: the unit every rollup stores (``Counters``, built below).

    A plain slots dataclass, not a pydantic model: summaries build and add several per read, and on the rate
    limiter's hot path a model's construction cost more than the SQLite query.
    """

    __slots__ = ()

    def __add__(self, other: Counters) -> Counters:
        # Not dataclasses.astuple: it deep-copies each of the ~100 fields (about 1 ms an addition here).
        return Counters(*map(add, _all_values(self), _all_values(other)))

    @property
    def tokens_total(self) -> int:
        return self.tokens_input + self.tokens_output  # type: ignore[attr-defined]

    @property
    def usage(self) -> dict[str, int]:
        """Every usage kind's total, by kind name."""
        return dict(zip(KIND_NAMES, _kind_values(self), strict=True))

    @property
    def cost_nano_by_kind(self) -> dict[str, int]:
        """The cost in nano-USD split by ``COST_PARTS``; the parts add up to ``cost_nano``."""
        return dict(zip(COST_PARTS, _cost_values(self), strict=True))

    @property
    def latency_counts(self) -> tuple[int, ...]:
        """The latency histogram (``models.latency``): requests per duration bucket."""
        return _latency_values(self)


# Requests, failures and unpriced ones; then one counter per usage kind; then money and the free-rule count;
# then the cost split by kind; then latency: how many requests reported one, their sum, and their histogram.
COUNTER_FIELDS: tuple[str, ...] = (
    "requests", "failed_requests", "unpriced_requests", *KIND_NAMES, "cost_nano", "platform_credits", "free_requests",
    "other_host_requests", *COST_COUNTERS, "timed_requests", "latency_ms_total", *LATENCY_COUNTERS,
)  # fmt: skip
Counters = make_dataclass(
    "Counters",
    [(name, int, 0) for name in COUNTER_FIELDS],
    bases=(_CounterSum,),
    frozen=True,
    slots=True,
)
Counters.__module__ = __name__
_all_values = attrgetter(*COUNTER_FIELDS)
_kind_values = attrgetter(*KIND_NAMES)
_cost_values = attrgetter(*COST_COUNTERS)
_latency_values = attrgetter(*LATENCY_COUNTERS)


# Positions in COUNTER_FIELDS, for ``moved_counters``.
_AT = {name: index for index, name in enumerate(COUNTER_FIELDS)}
_KIND_POSITIONS = tuple(_AT[name] for name in KIND_NAMES)
_PART_POSITIONS = {part: _AT[counter] for part, counter in zip(COST_PARTS, COST_COUNTERS, strict=True)}
_COST, _CREDITS, _FREE, _OTHER_HOST = (_AT[n] for n in ("cost_nano", "platform_credits", "free_requests",
                                                         "other_host_requests"))  # fmt: skip
_TIMED_AT, _LATENCY_TOTAL_AT, _HISTOGRAM_AT = _AT["timed_requests"], _AT["latency_ms_total"], _AT[LATENCY_COUNTERS[0]]


def moved_counters(log: AIUsageLog) -> list[tuple[int, int]]:
    """What one event adds, as (position in ``COUNTER_FIELDS``, amount) for the counters it moves, in that order.

    An event moves about ten of the ~110 counters, and a single event's rollup upsert names only those (the logging
    hot path builds this, not the whole tuple); ``tests/factories.event_counters`` writes all of them out by name.
    """
    moved = [(0, 1)]
    if not log.success:
        moved.append((1, 1))
    if log.price_is_fallback:
        moved.append((2, 1))
    moved += [(at, value) for at, value in zip(_KIND_POSITIONS, _kind_values(log), strict=True) if value]
    for at, value in ((_COST, log.cost_nano), (_CREDITS, log.platform_credits)):
        if value:
            moved.append((at, value))
    if log.price_rule in FREE_PRICE_RULES:
        moved.append((_FREE, 1))
    elif log.price_rule == "other_host":
        moved.append((_OTHER_HOST, 1))
    parts = log.cost_nano_by_kind
    if parts:
        moved += sorted(
            (_PART_POSITIONS[part], nano) for part, nano in parts.items() if nano and part in _PART_POSITIONS
        )
    duration = log.request_duration_ms
    if duration is not None:
        moved.append((_TIMED_AT, 1))
        if duration:
            moved.append((_LATENCY_TOTAL_AT, duration))
        moved.append((_HISTOGRAM_AT + latency_bucket(duration), 1))
    return moved
