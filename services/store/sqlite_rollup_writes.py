"""How events add to the embedded store's rollups in bulk: one aggregate upsert per rollup kind, in SQL.

A batch of events (and a rebuild, which is every event as one batch) is added by ``add_events_to_rollups``; a
single event takes plain upserts instead (``sqlite_store``), faster for one row each.
"""

from __future__ import annotations

import functools
import sqlite3

from models.ai_usage import FREE_PRICE_RULES
from models.counters import COUNTER_FIELDS
from models.latency import LATENCY_BUCKETS, LATENCY_COUNTERS, bucket_bounds
from models.usage_kinds import COST_COUNTERS, KIND_NAMES
from services.store.rollups import DEFAULT_TENANT, KIND_COUNTERS, OPTIONAL_SCOPES, SHAPES, UNKNOWN_PROVIDER

# How each field a rollup shape names is read off an events row (ts is fixed-width UTC text); the same values
# ``rollups._key_values`` computes for one event (char(31) is the separator of tenant-qualified keys).
_PROVIDER_SQL = f"COALESCE(provider, '{UNKNOWN_PROVIDER}')"
_FIELD_SQL = {
    None: "''",
    "player": "CASE WHEN tenant_id IS NULL THEN user_id ELSE tenant_id || char(31) || user_id END",
    "session": "CASE WHEN tenant_id IS NULL THEN session_id ELSE tenant_id || char(31) || session_id END",
    "tenant": f"COALESCE(tenant_id, '{DEFAULT_TENANT}')",
    "user_id": "user_id",
    "day": "substr(ts, 1, 10)",
    "hour": "substr(ts, 1, 4) || substr(ts, 6, 2) || substr(ts, 9, 2) || substr(ts, 12, 2)",
    "model": "model",
    "provider": _PROVIDER_SQL,
    "task_type": "task_type",
    "provider_model": f"{_PROVIDER_SQL} || char(31) || model",
    "provider_model_task": f"{_PROVIDER_SQL} || char(31) || model || char(31) || task_type",
    "feature_task": "COALESCE(feature, '') || char(31) || task_type",
}


def _bucket_sql(index: int) -> str:
    low, high = bucket_bounds(index)
    within = f"request_duration_ms >= {low}" if high is None else f"request_duration_ms BETWEEN {low} AND {high}"
    return f"COUNT(CASE WHEN {within} THEN 1 END)"


_COUNTER_SQL = {
    "requests": "COUNT(*)",
    "failed_requests": "SUM(1 - success)",
    "unpriced_requests": "SUM(price_is_fallback)",
    **{name: f"SUM({name})" for name in (*KIND_NAMES, *COST_COUNTERS)},
    "cost_nano": "SUM(cost_nano)",
    "platform_credits": "SUM(platform_credits)",
    "free_requests": f"SUM(price_rule IN ({', '.join(repr(rule) for rule in sorted(FREE_PRICE_RULES))}))",
    "other_host_requests": "SUM(price_rule = 'other_host')",
    "timed_requests": "COUNT(request_duration_ms)",
    "latency_ms_total": "COALESCE(SUM(request_duration_ms), 0)",
    **{name: _bucket_sql(index) for index, name in zip(range(LATENCY_BUCKETS), LATENCY_COUNTERS, strict=True)},
}


@functools.lru_cache(maxsize=64)
def rollup_statements(counters: tuple[str, ...] = COUNTER_FIELDS) -> tuple[str, ...]:
    """One aggregate upsert per rollup kind, adding every event with ``seq > ?`` to these counters of its rollup rows.

    Aggregating in SQLite (one GROUP BY per kind) instead of one upsert per event and kind is what lets a
    batch of events cost a handful of statements; naming only the counters a batch moves (a dozen of ~110) keeps
    each statement as cheap as it was before the table of kinds grew.
    """
    statements = []
    for kind, shape in SHAPES.items():
        kept = [name for name in counters if name in KIND_COUNTERS[kind]]  # no histogram where the kind has none
        names = ", ".join(kept)
        sums = ", ".join(_COUNTER_SQL[name] for name in kept)
        updates = ", ".join(f"{name} = {name} + excluded.{name}" for name in kept)
        scope, bucket, dim = (_FIELD_SQL[name] for name in (shape.scope, shape.bucket, shape.dim))
        skip_empty = f" AND {scope} IS NOT NULL" if shape.scope in OPTIONAL_SCOPES else ""
        statements.append(
            f"INSERT INTO rollups (scope, kind, bucket, dim, {names}) "
            f"SELECT {scope}, '{kind.value}', {bucket}, {dim}, {sums} FROM events NOT INDEXED "
            f"WHERE seq > ?{skip_empty} GROUP BY 1, 3, 4 "
            f"ON CONFLICT (scope, kind, bucket, dim) DO UPDATE SET {updates}"
        )
    return tuple(statements)


assert set(_COUNTER_SQL) == set(COUNTER_FIELDS), "every counter needs an aggregate"


def add_events_to_rollups(conn: sqlite3.Connection, after_seq: int, counters: tuple[str, ...] = COUNTER_FIELDS) -> None:
    """Add every event with ``seq > after_seq`` to its rollups (inside the caller's write transaction).

    ``counters`` may leave out counters that none of those events moves (they would add zero)."""
    for statement in rollup_statements(counters):
        conn.execute(statement, (after_seq,))


def rebuild_rollups(conn: sqlite3.Connection) -> None:
    """Recompute every rollup from the events (inside the caller's transaction)."""
    conn.execute("DELETE FROM rollups")
    add_events_to_rollups(conn, 0)
