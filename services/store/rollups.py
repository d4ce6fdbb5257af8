"""Which rollups an event feeds: one table that every store derives its writes from.

A rollup row is keyed by (kind, scope, bucket, dim) and holds ``Counters`` (latency histogram included).
Summaries and analytics read a bounded number of these rows, so they cost the same at a thousand or a
million events. Everything is tenant-scoped: a player is (tenant, user), and the shared rows are per tenant
(the default tenant's key is ""); answers for every tenant add the tenants' rows up. An event feeds eight
rows (seven without a session): three of its player's, one of its player's day in the tenant's ranking, and
four shared ones (the tenant's hour by provider, and its day by provider × model, by provider × model × task type,
and by feature × task type). Kinds whose dim is the task type also give the total of their (kind, scope, bucket)
by summing at most five rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from operator import add
from typing import NamedTuple

from models.ai_usage import AIUsageLog
from models.counters import COUNTER_FIELDS, Counters
from models.latency import LATENCY_COUNTERS
from services.errors import StoreError


class RollupKind(StrEnum):
    USER_DAY = "user_day"  # a player's day, by task type
    USER_MODEL = "user_model"  # a player's all time, by model
    SESSION = "session"  # by task type
    PLAYER_DAY = "player_day"  # a tenant's day, by player: the top players of a day read a few index entries
    TENANT_HOUR = "tenant_hour"  # a tenant's hour, by provider: hourly series and the last 24 hours
    TENANT_DAY = "tenant_day"  # a tenant's day, by provider × model: series, per-provider and per-model figures
    TENANT_DAY_TASK = "tenant_day_task"  # a tenant's day, by provider × model × task type
    TENANT_DAY_FEATURE = "tenant_day_feature"  # a tenant's day, by feature × task type


@dataclass(frozen=True)
class RollupShape:
    """Which key field fills each part of the rollup key (None: the part is the empty string).

    ``shared`` rows are written by every player's events (a store with row contention, Appwrite, shards them).
    ``histogram`` rows keep the latency histogram (60 counters): only the kinds percentiles are read from, since
    every counter a row keeps costs each write that touches it.
    """

    scope: str | None
    bucket: str | None
    dim: str | None
    shared: bool = False
    histogram: bool = False


# Field names refer to ``_FIELD_ORDER`` below. "player" and "session" are tenant-qualified (``player_key``);
# "tenant" is the tenant id ("" for the default tenant); "day" is YYYY-MM-DD and "hour"
# YYYYMMDDHH (UTC; ten characters, the width of Appwrite's bucket column, and in time order as text);
# the joined dims (``JOINED_DIMS``) hold several fields, read back by ``dim_parts``. The tenant's day is cut three
# ways, each as narrow as its readers need: a product of every dimension (~200 rows a busy tenant's day, one cut
# before this table) made a month's latency percentiles 80–110 ms and its top operations ~40 ms at a million events.
# The latency histogram is on the hour and the provider × model day only: percentiles over a month read ~20 rows a
# tenant a day.
SHAPES: dict[RollupKind, RollupShape] = {
    RollupKind.USER_DAY: RollupShape("player", "day", "task_type"),
    RollupKind.USER_MODEL: RollupShape("player", None, "model"),
    RollupKind.SESSION: RollupShape("session", None, "task_type"),
    RollupKind.PLAYER_DAY: RollupShape("tenant", "day", "user_id"),
    RollupKind.TENANT_HOUR: RollupShape("tenant", "hour", "provider", shared=True, histogram=True),
    RollupKind.TENANT_DAY: RollupShape("tenant", "day", "provider_model", shared=True, histogram=True),
    RollupKind.TENANT_DAY_TASK: RollupShape("tenant", "day", "provider_model_task", shared=True),
    RollupKind.TENANT_DAY_FEATURE: RollupShape("tenant", "day", "feature_task", shared=True),
}

# The dims that join several fields (with a control character no identifier may contain; no feature is "").
JOINED_DIMS: dict[str, tuple[str, ...]] = {
    "provider_model": ("provider", "model"),
    "provider_model_task": ("provider", "model", "task_type"),
    "feature_task": ("feature", "task_type"),
}

# Kinds every player's events land in at once; a store with row contention (Appwrite) shards them.
GLOBAL_KINDS = frozenset(k for k, shape in SHAPES.items() if shape.shared)

# A rollup whose scope field is empty on the event is skipped (an event without a session, say).
OPTIONAL_SCOPES = frozenset({"session"})

UNKNOWN_PROVIDER = "unknown"
DEFAULT_TENANT = ""  # the tenant key of events without a tenant_id

# Changes whenever the shapes do, so a store can tell its rollups were built by another definition.
SHAPES_FINGERPRINT = repr(sorted((k.value, s.scope, s.bucket, s.dim, s.histogram) for k, s in SHAPES.items()))

# The one rule of the histogram: a kind keeps every counter, less the histogram when it has none (it is kept only
# where percentiles are read). The histogram's counters are the last of COUNTER_FIELDS, so a row without one is the
# others followed by zeros. ``KIND_COUNTERS`` is the rule by name (SQL), ``kept_by`` by position (an event's moves).
HISTOGRAM_AT = COUNTER_FIELDS.index(LATENCY_COUNTERS[0])
assert COUNTER_FIELDS[HISTOGRAM_AT:] == LATENCY_COUNTERS, "the histogram ends the counters"
HISTOGRAM_KINDS = frozenset(kind for kind, shape in SHAPES.items() if shape.histogram)
# Every counter but the histogram: what a kind without one keeps, and what a summary's totals read.
TOTAL_COUNTERS = COUNTER_FIELDS[:HISTOGRAM_AT]
KIND_COUNTERS: dict[RollupKind, tuple[str, ...]] = {
    kind: COUNTER_FIELDS if kind in HISTOGRAM_KINDS else TOTAL_COUNTERS for kind in SHAPES
}
# What a breakdown shows of each part: summing only these over a month of a tenant's day rows took a tenth of the
# time of every counter.
BREAKDOWN_COUNTERS = ("requests", "tokens_input", "tokens_output", "cost_nano")


def kept_by(kind: RollupKind, moved: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Of an event's ``moved_counters``, what a row of this kind adds."""
    return moved if kind in HISTOGRAM_KINDS else [move for move in moved if move[0] < HISTOGRAM_AT]


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


def month_day_buckets(year: int, month: int) -> tuple[str, str]:
    """The first and last day bucket of a month, as bounds of a bucket range: "-31" in text order holds every day
    of the month, whatever its length."""
    return f"{year:04d}-{month:02d}-01", f"{year:04d}-{month:02d}-31"


def hour_bucket(at: datetime) -> str:
    """The ``TENANT_HOUR`` bucket of a UTC instant."""
    at = at.astimezone(UTC)
    return f"{at.year:04d}{at.month:02d}{at.day:02d}{at.hour:02d}"


def player_key(user_id: str, tenant_id: str | None = None) -> str:
    """The scope of a player's (or a session's) rollups: the id itself in the default tenant (None, or "" as an
    event's blank tenant_id is stored), as before tenants scoped them, else tenant and id joined by a control
    character no identifier may contain."""
    return f"{tenant_id}\x1f{user_id}" if tenant_id else user_id


def tenant_key(tenant_id: str | None) -> str:
    return DEFAULT_TENANT if tenant_id is None else tenant_id


def dim_parts(kind: RollupKind, dim: str) -> dict[str, str]:
    """A row's dim by field name: {"provider": …, "model": …} for a ``TENANT_DAY`` row, say."""
    name = SHAPES[kind].dim or ""
    names = JOINED_DIMS.get(name)
    if names is None:
        return {name: dim}
    values = dim.split("\x1f")
    if len(values) != len(names):
        # A row an earlier definition wrote (a tenant day by provider alone, say): Appwrite keeps it until setup
        # rebuilds the rollups, and its answer would be wrong, so the read is refused as the writes are.
        raise StoreError(
            f"the rollups hold a {kind.value} row of an earlier definition; rebuild them "
            "(`ai-usage appwrite setup`, or `ai-usage rollups rebuild`)"
        )
    return dict(zip(names, values, strict=True))


_FIELD_ORDER = ("player", "session", "tenant", "user_id", "day", "hour", "model", "provider", "task_type",
                "provider_model", "provider_model_task", "feature_task", "")  # fmt: skip
# SHAPES compiled to positions in the tuple ``_key_values`` builds (the last position is the empty string).
_PLAN = tuple(
    (kind, *(_FIELD_ORDER.index(name or "") for name in (s.scope, s.bucket, s.dim)), s.scope in OPTIONAL_SCOPES)
    for kind, s in SHAPES.items()
)


def _key_values(log: AIUsageLog) -> tuple[str, ...]:
    ts = log.timestamp
    day = ts.date().isoformat()
    provider = log.provider or UNKNOWN_PROVIDER
    tenant = log.tenant_id
    session = "" if log.session_id is None else player_key(log.session_id, tenant)
    task = log.task_type.value
    provider_model = f"{provider}\x1f{log.model}"
    return (player_key(log.user_id, tenant), session, tenant_key(tenant), log.user_id, day,
            f"{day[:4]}{day[5:7]}{day[8:]}{ts.hour:02d}", log.model, provider, task, provider_model,
            f"{provider_model}\x1f{task}", f"{log.feature or ''}\x1f{task}", "")  # fmt: skip


def rollup_keys(log: AIUsageLog) -> list[RollupKey]:
    """Every rollup row this event adds its counters to."""
    v = _key_values(log)
    return [RollupKey(kind, v[s], v[b], v[d]) for kind, s, b, d, optional in _PLAN if not (optional and not v[s])]


def breakdowns_by(
    kind: RollupKind,
    rows: Mapping[tuple[str, str, str], Sequence[int]],
    parts: Sequence[str],
    counters: Sequence[str],
) -> dict[str, dict[str, Counters]]:
    """Rows of a kind with a joined dim (as ``sum_rollups`` returns them, ``counters`` each) added up by each of
    ``parts`` (fields of the dim): part -> value -> counters (the others 0)."""
    # Added up as plain tuples and made ``Counters`` once per group: a Counters of ~100 fields per row read cost
    # more than the read.
    sums: dict[str, dict[str, tuple[int, ...]]] = {part: {} for part in parts}
    for (_scope, _bucket, dim), values in rows.items():
        for part, value in dim_parts(kind, dim).items():
            if part in sums:
                before = sums[part].get(value)
                sums[part][value] = tuple(values) if before is None else tuple(map(add, before, values))
    return {
        part: {value: Counters(**dict(zip(counters, values, strict=True))) for value, values in groups.items()}
        for part, groups in sums.items()
    }


def total_of(rows: Mapping[object, Counters]) -> Counters:
    """The sum of several rollup rows (the dims of one key, the shards of a global row, …)."""
    total = Counters()
    for counters in rows.values():
        total = total + counters
    return total
