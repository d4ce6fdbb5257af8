"""The embedded store's schema: versioned migrations, and the check that rollups match today's shapes.

A change to ``rollups.SHAPES`` is detected by its fingerprint and the rollups are rebuilt from the events,
inside the migration's transaction, so a summary never mixes two definitions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from models.ai_usage import log_id_for
from models.counters import COUNTER_FIELDS
from models.usage_kinds import COST_COUNTERS, KIND_NAMES
from services.errors import StoreError
from services.store.rollups import SHAPES, SHAPES_FINGERPRINT, RollupKind
from services.store.sqlite_rollup_writes import rebuild_rollups

# Columns stored as the event's own values (text and integers), one per usage kind among them; then the ones
# converted on the way in and out (enum, booleans, JSON, time). Rows map to events by these names.
PLAIN_COLUMNS: tuple[str, ...] = (
    "request_id", "log_id", "user_id", "tenant_id", "model", "provider", *KIND_NAMES, "session_id",
    "character_id", "request_duration_ms", "error_message", "cost_nano", "price_model_id", "platform_credits",
    "price_rule", "service_tier", "price_tier", "price_version", "feature",
)  # fmt: skip
CONVERTED_COLUMNS: tuple[str, ...] = ("task_type", "success", "metadata", "ts", "price_is_fallback")
# cost_nano split by kind: the row's ``cost_nano_by_kind`` mapping, a column per part.
EVENT_COLUMNS: tuple[str, ...] = PLAIN_COLUMNS + CONVERTED_COLUMNS + COST_COUNTERS
# The events' columns as version 1 created them (the version 2 migration copies exactly these).
V1_EVENT_COLUMNS = (
    "request_id", "log_id", "user_id", "tenant_id", "model", "provider", "task_type",
    "tokens_input", "tokens_output", "tokens_cached", "tokens_cache_write", "tokens_reasoning",
    "credits", "session_id", "character_id", "request_duration_ms", "success", "error_message",
    "metadata", "ts", "cost_nano", "price_model_id", "price_is_fallback", "platform_credits",
)  # fmt: skip


# The counters as version 1 created them; later versions add columns (a migration never changes in hindsight).
_V1_COUNTERS = (
    "requests", "failed_requests", "unpriced_requests", "tokens_input", "tokens_output", "tokens_cached",
    "tokens_cache_write", "tokens_reasoning", "credits", "cost_nano", "platform_credits",
)  # fmt: skip


def _v1_initial(conn: sqlite3.Connection) -> None:
    counter_columns = ",\n    ".join(f"{name} INTEGER NOT NULL DEFAULT 0" for name in _V1_COUNTERS)
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


def _v2_tenant_keys(conn: sqlite3.Connection) -> None:
    """Idempotency by (tenant_id, request_id) and the price rule of each event.

    Version 1 made ``request_id`` unique across tenants (one tenant's event could swallow another's); the key
    is now ``log_id``, derived from both. The column constraint cannot be dropped in place, so the events are
    copied into the new table, every row kept: a tenant's row gets its tenant-scoped id, and the price rule
    is read off what priced it (old free entries were ``ollama/...`` and ``...:free`` at $0).
    """
    conn.create_function("ai_usage_log_id", 2, log_id_for, deterministic=True)
    table = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'").fetchone()[0]
    new_table = table.replace("request_id TEXT NOT NULL UNIQUE", "request_id TEXT NOT NULL", 1).replace(
        "log_id TEXT NOT NULL", "log_id TEXT NOT NULL UNIQUE", 1
    )
    new_table = new_table.replace("CREATE TABLE events", "CREATE TABLE events_v2", 1).rstrip().removesuffix(")")
    conn.execute(f"{new_table},\n            price_rule TEXT NOT NULL DEFAULT 'book'\n        )")
    old_columns = V1_EVENT_COLUMNS
    copied = ", ".join("ai_usage_log_id(request_id, tenant_id)" if c == "log_id" else c for c in old_columns)
    rule = (
        "CASE WHEN price_is_fallback THEN 'default' "
        "WHEN cost_nano = 0 AND price_model_id LIKE '%:free' THEN 'free_variant' "
        "WHEN cost_nano = 0 AND price_model_id LIKE 'ollama/%' THEN 'free_local' ELSE 'book' END"
    )
    conn.execute(
        f"INSERT INTO events_v2 (seq, {', '.join(old_columns)}, price_rule) "
        f"SELECT seq, {copied}, {rule} FROM events ORDER BY seq"
    )
    conn.execute("DROP TABLE events")
    conn.execute("ALTER TABLE events_v2 RENAME TO events")
    conn.execute("CREATE INDEX events_user_ts ON events (user_id, ts)")
    conn.execute("CREATE INDEX events_session ON events (session_id) WHERE session_id IS NOT NULL")
    conn.execute("ALTER TABLE rollups ADD COLUMN free_requests INTEGER NOT NULL DEFAULT 0")


def _v3_tiers_and_versions(conn: sqlite3.Connection) -> None:
    """The service tier of each event, the tier whose prices applied, and which price version priced it.

    Events stored before were all served and priced at standard; their price version is not known (NULL).
    """
    conn.execute("ALTER TABLE events ADD COLUMN service_tier TEXT NOT NULL DEFAULT 'standard'")
    conn.execute("ALTER TABLE events ADD COLUMN price_tier TEXT NOT NULL DEFAULT 'standard'")
    conn.execute("ALTER TABLE events ADD COLUMN price_version TEXT")


def _v4_features_and_analytics(conn: sqlite3.Connection) -> None:
    """The feature label of each event, and the indexes the analytics read the rollups by.

    The top players of a day walk the first entries of a cost index (overall, or within one tenant; partial, so
    only those rows pay for it); series and breakdowns over every tenant read a kind by bucket.
    """
    conn.execute("ALTER TABLE events ADD COLUMN feature TEXT")
    player_day = RollupKind.PLAYER_DAY.value
    conn.execute(f"CREATE INDEX rollups_top_players ON rollups (bucket, cost_nano) WHERE kind = '{player_day}'")
    conn.execute(
        f"CREATE INDEX rollups_top_tenant_players ON rollups (scope, bucket, cost_nano) WHERE kind = '{player_day}'"
    )
    # Not partial: a rollup's (kind, bucket) never changes, so only a new row writes an entry.
    conn.execute("CREATE INDEX rollups_kind_bucket ON rollups (kind, bucket)")


def _v5_fewer_pages_per_event(conn: sqlite3.Connection) -> None:
    """Two indexes that cost every logged event a page or more each (of ~17.6 written per event), for no read
    that cannot do without them:

    - the cost index over every tenant's players: the top players of a day over every tenant now merge each
      tenant's first entries of its own cost index;
    - the one (kind, bucket) index: every new session and player-by-model row wrote an entry, and nothing reads
      those kinds by bucket. It becomes one partial index per kind with a time bucket (``bucket_indexes``).
    """
    conn.execute("DROP INDEX IF EXISTS rollups_top_players")
    conn.execute("DROP INDEX IF EXISTS rollups_kind_bucket")


# Append only: each migration runs once, in order, and bumps PRAGMA user_version.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _v1_initial,
    _v2_tenant_keys,
    _v3_tiers_and_versions,
    _v4_features_and_analytics,
    _v5_fewer_pages_per_event,
)
SCHEMA_VERSION = len(MIGRATIONS)
# The rollups hold what these shapes and counters add up; when either changes, they are rebuilt.
ROLLUPS_FINGERPRINT = f"{SHAPES_FINGERPRINT} {COUNTER_FIELDS!r}"


def _missing_kind_columns(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Per table, the integer columns it lacks yet: a usage kind added to ``USAGE_KINDS`` since (both tables), a
    counter added to ``COUNTER_FIELDS`` since (rollups)."""
    missing = {}
    for table, wanted in (("events", (*KIND_NAMES, *COST_COUNTERS)), ("rollups", COUNTER_FIELDS)):
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        missing[table] = [name for name in wanted if name not in have]
    return missing


def _add_kind_columns(conn: sqlite3.Connection) -> None:
    # A new kind is zero on every event stored before it existed; the rollups are rebuilt after this, which
    # fills a new counter from the events.
    for table, names in _missing_kind_columns(conn).items():
        for name in names:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} INTEGER NOT NULL DEFAULT 0")
            if (table, name) == ("events", "cost_nano_unsplit"):
                # Events logged before costs were split by kind: their whole cost is the unsplit part, so every
                # event's parts still add up to its cost.
                conn.execute("UPDATE events SET cost_nano_unsplit = cost_nano")


_BUCKET_INDEX = "rollups_bucket_"


def bucket_index(kind: RollupKind) -> str:
    """The partial index of one kind's rows by bucket, for reads of that kind over every tenant (and over a range,
    for ``rollups verify``); only a new row of that kind writes an entry. Queries name the kind as a literal:
    SQLite uses a partial index only for a query whose WHERE repeats its condition."""
    return f"{_BUCKET_INDEX}{kind.value}"


def _bucket_index_changes(conn: sqlite3.Connection) -> list[str]:
    """The statements that make the per-kind bucket indexes those of ``SHAPES``' kinds with a time bucket."""
    wanted = {bucket_index(kind): kind for kind, shape in SHAPES.items() if shape.bucket is not None}
    have = {
        row[0]
        for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'rollups'")
        if row[0].startswith(_BUCKET_INDEX)
    }
    return [f"DROP INDEX {name}" for name in sorted(have - wanted.keys())] + [
        f"CREATE INDEX {name} ON rollups (bucket) WHERE kind = '{kind.value}'"
        for name, kind in wanted.items()
        if name not in have
    ]


def _due(conn: sqlite3.Connection) -> bool:
    """Whether a migration or a rollup rebuild is due (plain reads: they never wait for a writer)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(f"database schema version {version} is newer than this code ({SCHEMA_VERSION})")
    if version < SCHEMA_VERSION or any(_missing_kind_columns(conn).values()) or _bucket_index_changes(conn):
        return True
    row = conn.execute("SELECT value FROM meta WHERE key = 'rollup_shapes'").fetchone()
    return row is None or row[0] != ROLLUPS_FINGERPRINT


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; safe from several processes at once (the write lock serialises them).

    The write lock is taken only when something is due, so opening an up-to-date store (a new server worker,
    ``ai-usage daily``) never waits behind a writer. When the rollup shapes or counters changed since the
    rollups were built, they are rebuilt from the events, in the same transaction.
    """
    if not _due(conn):
        return SCHEMA_VERSION
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"database schema version {version} is newer than this code ({SCHEMA_VERSION})")
        for migration in MIGRATIONS[version:]:
            migration(conn)
        if version < SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        _add_kind_columns(conn)
        for statement in _bucket_index_changes(conn):
            conn.execute(statement)
        row = conn.execute("SELECT value FROM meta WHERE key = 'rollup_shapes'").fetchone()
        if row is None or row[0] != ROLLUPS_FINGERPRINT:
            rebuild_rollups(conn)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('rollup_shapes', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (ROLLUPS_FINGERPRINT,),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION
