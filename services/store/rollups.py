"""Which rollups an event feeds: one table that both stores derive their writes from.

A rollup row is keyed by (kind, scope, bucket, dim) and holds ``Counters``. Summaries read a handful of
these rows, so they cost the same at a thousand or a million events.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from models.ai_usage import AIUsageLog


class RollupKind(StrEnum):
    USER_DAY = "user_day"
    USER_DAY_TASK = "user_day_task"
    USER_MONTH = "user_month"
    USER_MODEL = "user_model"
    USER_TOTAL = "user_total"
    SESSION = "session"
    SESSION_TASK = "session_task"
    GLOBAL_DAY = "global_day"
    GLOBAL_DAY_MODEL = "global_day_model"
    GLOBAL_DAY_PROVIDER = "global_day_provider"
    GLOBAL_DAY_TASK = "global_day_task"


@dataclass(frozen=True)
class RollupShape:
    """Which event field fills each part of the key (None: the part is the empty string)."""

    scope: str | None
    bucket: str | None
    dim: str | None


# Field names refer to ``event_key_fields`` below. "day" is YYYY-MM-DD (UTC), "month" YYYY-MM (UTC).
SHAPES: dict[RollupKind, RollupShape] = {
    RollupKind.USER_DAY: RollupShape("user_id", "day", None),
    RollupKind.USER_DAY_TASK: RollupShape("user_id", "day", "task_type"),
    RollupKind.USER_MONTH: RollupShape("user_id", "month", None),
    RollupKind.USER_MODEL: RollupShape("user_id", None, "model"),
    RollupKind.USER_TOTAL: RollupShape("user_id", None, None),
    RollupKind.SESSION: RollupShape("session_id", None, None),
    RollupKind.SESSION_TASK: RollupShape("session_id", None, "task_type"),
    RollupKind.GLOBAL_DAY: RollupShape(None, "day", None),
    RollupKind.GLOBAL_DAY_MODEL: RollupShape(None, "day", "model"),
    RollupKind.GLOBAL_DAY_PROVIDER: RollupShape(None, "day", "provider"),
    RollupKind.GLOBAL_DAY_TASK: RollupShape(None, "day", "task_type"),
}

# Kinds every player's events land in at once; a store with row contention (Appwrite) shards them.
GLOBAL_KINDS = frozenset(k for k, shape in SHAPES.items() if shape.scope is None)

# A rollup whose scope field is empty on the event is skipped (an event without a session, say).
OPTIONAL_SCOPES = frozenset({"session_id"})

UNKNOWN_PROVIDER = "unknown"


@dataclass(frozen=True, order=True)
class RollupKey:
    kind: RollupKind
    scope: str
    bucket: str
    dim: str


def day_bucket(log: AIUsageLog) -> str:
    return log.timestamp.date().isoformat()


def month_bucket(log: AIUsageLog) -> str:
    return f"{log.timestamp.year:04d}-{log.timestamp.month:02d}"


def event_key_fields(log: AIUsageLog) -> dict[str, str | None]:
    """The values the shapes above refer to, for one event."""
    return {
        "user_id": log.user_id,
        "session_id": log.session_id,
        "day": day_bucket(log),
        "month": month_bucket(log),
        "model": log.model,
        "provider": log.provider or UNKNOWN_PROVIDER,
        "task_type": log.task_type.value,
    }


def rollup_keys(log: AIUsageLog) -> list[RollupKey]:
    """Every rollup row this event adds its counters to."""
    fields = event_key_fields(log)
    keys = []
    for kind, shape in SHAPES.items():
        parts = []
        for name in (shape.scope, shape.bucket, shape.dim):
            parts.append("" if name is None else fields[name])
        if shape.scope in OPTIONAL_SCOPES and not parts[0]:
            continue
        keys.append(RollupKey(kind, parts[0] or "", parts[1] or "", parts[2] or ""))
    return keys
