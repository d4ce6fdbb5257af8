"""Which rollups an event feeds: one table that every store derives its writes from.

A rollup row is keyed by (kind, scope, bucket, dim) and holds ``Counters``. Summaries read a handful of
these rows, so they cost the same at a thousand or a million events. Kinds whose dim is the task type also
give the total of their (kind, scope, bucket) by summing at most five rows; that keeps the number of rows
written per event low (four per player, three global), which is what logging throughput depends on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from models.ai_usage import AIUsageLog, Counters


class RollupKind(StrEnum):
    USER_DAY = "user_day"  # by task type
    USER_MONTH = "user_month"
    USER_MODEL = "user_model"  # all time, by model
    SESSION = "session"  # by task type
    GLOBAL_DAY = "global_day"  # by task type
    GLOBAL_DAY_MODEL = "global_day_model"
    GLOBAL_DAY_PROVIDER = "global_day_provider"


@dataclass(frozen=True)
class RollupShape:
    """Which event field fills each part of the key (None: the part is the empty string)."""

    scope: str | None
    bucket: str | None
    dim: str | None


# Field names refer to ``_FIELD_ORDER`` below. "day" is YYYY-MM-DD (UTC), "month" YYYY-MM (UTC).
SHAPES: dict[RollupKind, RollupShape] = {
    RollupKind.USER_DAY: RollupShape("user_id", "day", "task_type"),
    RollupKind.USER_MONTH: RollupShape("user_id", "month", None),
    RollupKind.USER_MODEL: RollupShape("user_id", None, "model"),
    RollupKind.SESSION: RollupShape("session_id", None, "task_type"),
    RollupKind.GLOBAL_DAY: RollupShape(None, "day", "task_type"),
    RollupKind.GLOBAL_DAY_MODEL: RollupShape(None, "day", "model"),
    RollupKind.GLOBAL_DAY_PROVIDER: RollupShape(None, "day", "provider"),
}

# Kinds every player's events land in at once; a store with row contention (Appwrite) shards them.
GLOBAL_KINDS = frozenset(k for k, shape in SHAPES.items() if shape.scope is None)

# A rollup whose scope field is empty on the event is skipped (an event without a session, say).
OPTIONAL_SCOPES = frozenset({"session_id"})

UNKNOWN_PROVIDER = "unknown"

# Changes whenever the shapes do, so a store can tell its rollups were built by another definition.
SHAPES_FINGERPRINT = repr(sorted((k.value, s.scope, s.bucket, s.dim) for k, s in SHAPES.items()))


class RollupKey(NamedTuple):
    # A tuple, not a dataclass: it is hashed several times per event on the logging hot path.
    kind: RollupKind
    scope: str
    bucket: str
    dim: str


def day_bucket(log: AIUsageLog) -> str:
    return log.timestamp.date().isoformat()


def month_bucket(log: AIUsageLog) -> str:
    return f"{log.timestamp.year:04d}-{log.timestamp.month:02d}"


_FIELD_ORDER = ("user_id", "session_id", "day", "month", "model", "provider", "task_type", "")
# SHAPES compiled to positions in the tuple ``_key_values`` builds (the last position is the empty string).
_PLAN = tuple(
    (kind, *(_FIELD_ORDER.index(name or "") for name in (s.scope, s.bucket, s.dim)), s.scope in OPTIONAL_SCOPES)
    for kind, s in SHAPES.items()
)


def _key_values(log: AIUsageLog) -> tuple[str, ...]:
    day = log.timestamp.date().isoformat()
    provider = log.provider or UNKNOWN_PROVIDER
    return (log.user_id, log.session_id or "", day, day[:7], log.model, provider, log.task_type.value, "")


def rollup_keys(log: AIUsageLog) -> list[RollupKey]:
    """Every rollup row this event adds its counters to."""
    v = _key_values(log)
    return [RollupKey(kind, v[s], v[b], v[d]) for kind, s, b, d, optional in _PLAN if not (optional and not v[s])]


def total_of(rows: Mapping[object, Counters]) -> Counters:
    """The sum of several rollup rows (the dims of one key, the shards of a global row, …)."""
    total = Counters()
    for counters in rows.values():
        total = total + counters
    return total
