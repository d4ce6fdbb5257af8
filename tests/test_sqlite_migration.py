"""A database written by schema version 1 opens under version 2 with every event kept and keyed by tenant."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from models.ai_usage import log_id_for
from services.pricing import PriceBook
from services.store.rollups import RollupKind
from services.store.sqlite_schema import SCHEMA_VERSION, _v1_initial
from services.store.sqlite_store import SQLiteUsageStore
from services.usage_tracking_service import UsageTrackingService

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
V1_COLUMNS = (
    "request_id", "log_id", "user_id", "tenant_id", "model", "provider", "task_type", "tokens_input",
    "tokens_output", "tokens_cached", "tokens_cache_write", "tokens_reasoning", "credits", "session_id",
    "character_id", "request_duration_ms", "success", "error_message", "metadata", "ts", "cost_nano",
    "price_model_id", "price_is_fallback", "platform_credits",
)  # fmt: skip


def _v1_row(request_id: str, tenant_id: str | None, model: str, price_model_id: str, cost_nano: int) -> tuple:
    old_log_id = hashlib.sha256(request_id.encode()).hexdigest()[:32]  # version 1: the request id alone
    return (
        request_id, old_log_id, "player-1", tenant_id, model, "openai", "general", 100, 10, 0, 0, 0, 0, None, None,
        None, 1, None, "{}", "2026-11-23T10:00:00.000000+00:00", cost_nano, price_model_id, 0, cost_nano // 10**7,
    )  # fmt: skip


def _write_v1_database(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    _v1_initial(conn)
    rows = [
        _v1_row("r-1", None, "gpt-4o", "openai/gpt-4o", 1_000_000),
        _v1_row("r-2", "studio-a", "gpt-4o", "openai/gpt-4o", 2_000_000),
        _v1_row("r-3", None, "ollama/llama3", "ollama/llama3", 0),
    ]
    marks = ", ".join("?" * len(V1_COLUMNS))
    conn.executemany(f"INSERT INTO events ({', '.join(V1_COLUMNS)}) VALUES ({marks})", rows)
    conn.execute("INSERT INTO meta (key, value) VALUES ('rollup_shapes', 'the version 1 shapes')")
    conn.execute("PRAGMA user_version = 1")
    conn.execute("COMMIT")
    conn.close()


def test_a_version_1_database_migrates_without_losing_or_double_counting_an_event(tmp_path: Path) -> None:
    db_path = tmp_path / "usage.db"
    _write_v1_database(db_path)
    store = SQLiteUsageStore(db_path)
    assert store.schema_version == SCHEMA_VERSION
    ledger = UsageTrackingService(store, PriceBook.load(), clock=lambda: NOW)

    tenant_event = ledger.get_event("r-2", "studio-a")
    assert tenant_event is not None and tenant_event.log_id == log_id_for("r-2", "studio-a")
    assert ledger.get_event("r-2") is None  # the default tenant never had r-2
    assert ledger.get_event("r-1").log_id == log_id_for("r-1")
    assert [ledger.get_event(r, t).price_rule for r, t in (("r-1", None), ("r-3", None))] == ["book", "free_local"]

    day = ledger.get_daily_usage("player-1")
    assert (day.total_requests, day.free_requests, day.estimated_cost_exact) == (2, 1, Decimal("0.001"))
    # studio-a's player-1 is another player, with rollups of their own.
    assert ledger.get_daily_usage("player-1", tenant_id="studio-a").estimated_cost_exact == Decimal("0.002")
    # Replays of migrated events are recognised under their tenant's key, so nothing counts twice.
    replay = {"user_id": "player-1", "model": "gpt-4o", "provider": "openai", "tokens_input": 100, "tokens_output": 10}
    assert ledger.log_usage(request_id="r-2", tenant_id="studio-a", **replay).duplicate
    assert ledger.log_usage(request_id="r-1", **replay).duplicate
    assert ledger.log_usage(request_id="r-2", **replay).status.value == "stored"  # the default tenant's own r-2
    rows = store.get_rollups(RollupKind.USER_DAY, "player-1", "2026-11-23")
    assert sum(c.requests for c in rows.values()) == 3
    store.close()


def test_opening_the_migrated_database_again_changes_nothing(tmp_path: Path) -> None:
    db_path = tmp_path / "usage.db"
    _write_v1_database(db_path)
    SQLiteUsageStore(db_path).close()
    before = sqlite3.connect(db_path).execute("SELECT * FROM events ORDER BY seq").fetchall()
    SQLiteUsageStore(db_path).close()
    assert sqlite3.connect(db_path).execute("SELECT * FROM events ORDER BY seq").fetchall() == before
