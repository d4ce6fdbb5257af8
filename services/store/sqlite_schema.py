"""The embedded store's schema: versioned migrations, plus the trigger that keeps rollups in step.

The rollup trigger is generated from ``rollups.SHAPES`` so the SQLite store and every other store feed the
same rollups from the same table. A change to the shapes is detected by its fingerprint and the rollups are
rebuilt from the events, inside the migration's transaction.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable

from models.ai_usage import COUNTER_FIELDS
from services.errors import StoreError
from services.store.rollups import OPTIONAL_SCOPES, SHAPES, UNKNOWN_PROVIDER

EVENT_COLUMNS: tuple[str, ...] = (
    "request_id", "log_id", "user_id", "tenant_id", "model", "provider", "task_type",
    "tokens_input", "tokens_output", "tokens_cached", "tokens_cache_write", "tokens_reasoning",
    "credits", "session_id", "character_id", "request_duration_ms", "success", "error_message",
    "metadata", "ts", "day", "month", "cost_nano", "price_model_id", "price_is_fallback",
    "platform_credits",
)  # fmt: skip

# Event columns each rollup counter adds up; every other counter is an expression over the event.
_COUNTER_SOURCES = {
    "requests": "1",
    "failed_requests": "CASE WHEN NEW.success THEN 0 ELSE 1 END",
    "unpriced_requests": "NEW.price_is_fallback",
    **{name: f"NEW.{name}" for name in COUNTER_FIELDS if name.startswith("tokens_")},
    "credits": "NEW.credits",
    "cost_nano": "NEW.cost_nano",
    "platform_credits": "NEW.platform_credits",
}

# How a shape's field names map to event columns (provider may be NULL on the event).
_FIELD_SQL = {
    "user_id": "NEW.user_id",
    "session_id": "NEW.session_id",
    "day": "NEW.day",
    "month": "NEW.month",
    "model": "NEW.model",
    "provider": f"COALESCE(NEW.provider, '{UNKNOWN_PROVIDER}')",
    "task_type": "NEW.task_type",
}


def _rollup_trigger_sql() -> str:
    counters = ", ".join(COUNTER_FIELDS)
    values = ", ".join(_COUNTER_SOURCES[name] for name in COUNTER_FIELDS)
    updates = ", ".join(f"{name} = {name} + excluded.{name}" for name in COUNTER_FIELDS)
    statements = []
    for kind, shape in SHAPES.items():
        scope, bucket, dim = (("''" if f is None else _FIELD_SQL[f]) for f in (shape.scope, shape.bucket, shape.dim))
        # SQLite needs a WHERE in an INSERT…SELECT before an upsert clause; it doubles as the optional-scope skip.
        guard = f"{scope} IS NOT NULL" if shape.scope in OPTIONAL_SCOPES else "1"
        statements.append(
            f"INSERT INTO rollups (kind, scope, bucket, dim, {counters}) "
            f"SELECT '{kind.value}', {scope}, {bucket}, {dim}, {values} WHERE {guard} "
            f"ON CONFLICT (kind, scope, bucket, dim) DO UPDATE SET {updates};"
        )
    body = "\n    ".join(statements)
    return f"CREATE TRIGGER events_feed_rollups AFTER INSERT ON events FOR EACH ROW BEGIN\n    {body}\nEND"


ROLLUP_TRIGGER_SQL = _rollup_trigger_sql()
ROLLUP_FINGERPRINT = hashlib.sha256(ROLLUP_TRIGGER_SQL.encode()).hexdigest()


def _v1_initial(conn: sqlite3.Connection) -> None:
    counter_columns = ",\n    ".join(f"{name} INTEGER NOT NULL DEFAULT 0" for name in COUNTER_FIELDS)
    # Not executescript(): it commits first, and the migration must stay inside the caller's transaction.
    script = f"""
        CREATE TABLE events (
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
            day TEXT NOT NULL,
            month TEXT NOT NULL,
            cost_nano INTEGER NOT NULL,
            price_model_id TEXT NOT NULL,
            price_is_fallback INTEGER NOT NULL,
            platform_credits INTEGER NOT NULL
        );
        CREATE INDEX events_user_ts ON events (user_id, ts);
        CREATE INDEX events_session ON events (session_id) WHERE session_id IS NOT NULL;
        CREATE INDEX events_ts ON events (ts);
        CREATE TABLE rollups (
            kind TEXT NOT NULL,
            scope TEXT NOT NULL,
            bucket TEXT NOT NULL,
            dim TEXT NOT NULL,
            {counter_columns},
            PRIMARY KEY (kind, scope, bucket, dim)
        ) WITHOUT ROWID;
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        """
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


# Append only: each migration runs once, in order, and bumps PRAGMA user_version.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1_initial,)
SCHEMA_VERSION = len(MIGRATIONS)


def rebuild_rollups(conn: sqlite3.Connection) -> None:
    """Recompute every rollup from the events (inside the caller's transaction)."""
    conn.execute("DELETE FROM rollups")
    conn.execute("DROP TRIGGER IF EXISTS events_feed_rollups")
    conn.execute(ROLLUP_TRIGGER_SQL)
    # Re-inserting fires the trigger for each event; the copy keeps seq, so cursors stay valid.
    conn.execute("CREATE TEMP TABLE events_copy AS SELECT * FROM events")
    conn.execute("DELETE FROM events")
    conn.execute("INSERT INTO events SELECT * FROM events_copy ORDER BY seq")
    conn.execute("DROP TABLE temp.events_copy")


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; safe to call from several processes at once. Returns the version."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"database schema version {version} is newer than this code ({SCHEMA_VERSION})")
        for migration in MIGRATIONS[version:]:
            migration(conn)
        if version < SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        row = conn.execute("SELECT value FROM meta WHERE key = 'rollup_fingerprint'").fetchone()
        if row is None or row[0] != ROLLUP_FINGERPRINT:
            rebuild_rollups(conn)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('rollup_fingerprint', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (ROLLUP_FINGERPRINT,),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION
