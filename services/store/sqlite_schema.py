"""The embedded store's schema: versioned migrations, and the check that rollups match today's shapes.

A change to ``rollups.SHAPES`` is detected by its fingerprint and the rollups are rebuilt from the events,
inside the migration's transaction, so a summary never mixes two definitions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from models.ai_usage import COUNTER_FIELDS
from services.errors import StoreError
from services.store.rollups import OPTIONAL_SCOPES, SHAPES, SHAPES_FINGERPRINT, UNKNOWN_PROVIDER

EVENT_COLUMNS: tuple[str, ...] = (
    "request_id", "log_id", "user_id", "tenant_id", "model", "provider", "task_type",
    "tokens_input", "tokens_output", "tokens_cached", "tokens_cache_write", "tokens_reasoning",
    "credits", "session_id", "character_id", "request_duration_ms", "success", "error_message",
    "metadata", "ts", "cost_nano", "price_model_id", "price_is_fallback", "platform_credits",
)  # fmt: skip


# How each field a rollup shape names is read off an events row (ts is fixed-width UTC text).
_FIELD_SQL = {
    None: "''",
    "user_id": "user_id",
    "session_id": "session_id",
    "day": "substr(ts, 1, 10)",
    "month": "substr(ts, 1, 7)",
    "model": "model",
    "provider": f"COALESCE(provider, '{UNKNOWN_PROVIDER}')",
    "task_type": "task_type",
}
_COUNTER_SQL = {
    "requests": "COUNT(*)",
    "failed_requests": "SUM(1 - success)",
    "unpriced_requests": "SUM(price_is_fallback)",
    **{name: f"SUM({name})" for name in COUNTER_FIELDS if name.startswith("tokens_")},
    "credits": "SUM(credits)",
    "cost_nano": "SUM(cost_nano)",
    "platform_credits": "SUM(platform_credits)",
}


def _rollup_statements() -> tuple[str, ...]:
    """One aggregate upsert per rollup kind, adding every event with ``seq > ?`` to its rollup rows.

    Aggregating in SQLite (one GROUP BY per kind) instead of one upsert per event and kind is what lets a
    batch of events cost a handful of statements.
    """
    counters = ", ".join(COUNTER_FIELDS)
    sums = ", ".join(_COUNTER_SQL[name] for name in COUNTER_FIELDS)
    updates = ", ".join(f"{name} = {name} + excluded.{name}" for name in COUNTER_FIELDS)
    statements = []
    for kind, shape in SHAPES.items():
        scope, bucket, dim = (_FIELD_SQL[name] for name in (shape.scope, shape.bucket, shape.dim))
        skip_empty = f" AND {scope} IS NOT NULL" if shape.scope in OPTIONAL_SCOPES else ""
        statements.append(
            f"INSERT INTO rollups (scope, kind, bucket, dim, {counters}) "
            f"SELECT {scope}, '{kind.value}', {bucket}, {dim}, {sums} FROM events NOT INDEXED "
            f"WHERE seq > ?{skip_empty} GROUP BY 1, 3, 4 "
            f"ON CONFLICT (scope, kind, bucket, dim) DO UPDATE SET {updates}"
        )
    return tuple(statements)


ROLLUP_STATEMENTS = _rollup_statements()
assert set(_COUNTER_SQL) == set(COUNTER_FIELDS), "every counter needs an aggregate"


def add_events_to_rollups(conn: sqlite3.Connection, after_seq: int) -> None:
    """Add every event with ``seq > after_seq`` to its rollups (inside the caller's write transaction)."""
    for statement in ROLLUP_STATEMENTS:
        conn.execute(statement, (after_seq,))


def rebuild_rollups(conn: sqlite3.Connection) -> None:
    """Recompute every rollup from the events (inside the caller's transaction)."""
    conn.execute("DELETE FROM rollups")
    add_events_to_rollups(conn, 0)


def _v1_initial(conn: sqlite3.Connection) -> None:
    counter_columns = ",\n    ".join(f"{name} INTEGER NOT NULL DEFAULT 0" for name in COUNTER_FIELDS)
    # Rollups are keyed scope first: one player's rows share pages, so a commit touches few pages.
    statements = [
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            request_id TEXT NOT NULL UNIQUE,
            log_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            tenant_id TEXT,
            model TEXT NOT NULL,
            provider TEXT,
            task_type TEXT NOT NULL,
            tokens_input INTEGER NOT NULL,
            tokens_output INTEGER NOT NULL,
            tokens_cached INTEGER NOT NULL,
            tokens_cache_write INTEGER NOT NULL,
            tokens_reasoning INTEGER NOT NULL,
            credits INTEGER NOT NULL,
            session_id TEXT,
            character_id TEXT,
            request_duration_ms INTEGER,
            success INTEGER NOT NULL,
            error_message TEXT,
            metadata TEXT NOT NULL,
            ts TEXT NOT NULL,
            cost_nano INTEGER NOT NULL,
            price_model_id TEXT NOT NULL,
            price_is_fallback INTEGER NOT NULL,
            platform_credits INTEGER NOT NULL
        )""",
        "CREATE INDEX events_user_ts ON events (user_id, ts)",
        "CREATE INDEX events_session ON events (session_id) WHERE session_id IS NOT NULL",
        f"""CREATE TABLE rollups (
            scope TEXT NOT NULL,
            kind TEXT NOT NULL,
            bucket TEXT NOT NULL,
            dim TEXT NOT NULL,
            {counter_columns},
            PRIMARY KEY (scope, kind, bucket, dim)
        ) WITHOUT ROWID""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    ]
    # Not executescript(): it commits first, and the migration must stay inside the caller's transaction.
    for statement in statements:
        conn.execute(statement)


# Append only: each migration runs once, in order, and bumps PRAGMA user_version.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1_initial,)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; safe from several processes at once (the write lock serialises them).

    When the rollup shapes changed since the rollups were built, they are rebuilt from the events.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"database schema version {version} is newer than this code ({SCHEMA_VERSION})")
        for migration in MIGRATIONS[version:]:
            migration(conn)
        if version < SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        row = conn.execute("SELECT value FROM meta WHERE key = 'rollup_shapes'").fetchone()
        if row is None or row[0] != SHAPES_FINGERPRINT:
            rebuild_rollups(conn)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('rollup_shapes', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (SHAPES_FINGERPRINT,),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION
