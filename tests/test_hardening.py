"""Issue 8's defects, each reproduced as a caller would meet it: whatever is accepted can be served back, bad
input is refused before it can hurt, the rate limiter's count is fast, files are private, free is visible."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from functions.http_api.routes import BATCH_BODY_LIMIT
from functions.http_api.schemas import maximal_event_bytes
from models.ai_usage import LogStatus
from services.errors import StoreError, ValidationFailed
from services.pricing import PriceBook
from services.settings import Settings
from services.store.sqlite_store import SQLiteUsageStore
from services.usage_tracking_service import MAX_BATCH_EVENTS, UsageTrackingService
from tests.http_harness import SERVER, LiveServer, event, live_server, make_app

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DEEP_TEXT = '{"a":' + "[" * 990 + "]" * 990 + "}"  # 1,986 characters: within error_message's 2,000


@pytest.fixture
def ledger(sqlite_store: SQLiteUsageStore, price_book: PriceBook) -> UsageTrackingService:
    return UsageTrackingService(sqlite_store, price_book, clock=lambda: NOW)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    db_path = Path(tmp_path_factory.mktemp("hardening")) / "usage.db"
    app = make_app(db_path)
    with live_server(app, "wsgi") as server:
        yield server
    app.close()


def _post_raw(api: LiveServer, path: str, text: str) -> object:
    # Raw JSON text, so escapes such as \ud800 reach the server exactly as a JS backend sends them.
    headers = {**SERVER, "Content-Type": "application/json"}
    return api.post(path, data=text.encode(), headers=headers)


# -- 2. whatever is accepted can be served back ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ('"metadata": {"name": "\\ud800"}', "metadata"),
        ('"metadata": {"\\udfff": 1}', "metadata"),
        ('"error_message": "sliced \\ud83d"', "error_message"),
        ('"session_id": "s\\udc00"', "session_id"),
        ('"metadata": ' + '{"a":' * 40 + "1" + "}" * 40, "metadata"),
        ('"metadata": {"a": ' + "[" * 256 + "]" * 256 + "}", "metadata"),
    ],
    ids=["surrogate value", "surrogate key", "sliced emoji", "surrogate id", "40 levels", "256 levels"],
)
def test_what_could_not_be_served_back_is_refused_at_ingest_naming_the_field(
    api: LiveServer, fields: str, field: str
) -> None:
    body = '{"user_id": "p-bad", "model": "gpt-4o", ' + fields + "}"
    response = _post_raw(api, "/v1/usage", body)
    assert response.status_code == 422, response.text
    assert [f["field"] for f in response.json()["error"]["fields"]] == [field]
    assert api.get("/v1/users/p-bad/requests/today", headers=SERVER).json()["count"] == 0


def test_deeply_nested_json_text_in_a_text_field_is_stored_and_answered(api: LiveServer) -> None:
    response = api.post("/v1/usage", json=event(user_id="p-deep", error_message=DEEP_TEXT), headers=SERVER)
    assert response.status_code == 201, response.text
    assert response.json()["error_message"] == DEEP_TEXT
    replay = event(user_id="p-deep", request_id=response.json()["request_id"], error_message=DEEP_TEXT)
    again = api.post("/v1/usage", json=replay, headers=SERVER)
    assert again.status_code == 200 and again.json()["duplicate"] is True


def test_a_batch_stores_the_valid_events_when_one_fails_in_any_way(api: LiveServer) -> None:
    events = [
        event(user_id="p-batch", request_id="b-1"),
        event(
            user_id="p-batch",
            request_id="b-2",
            metadata={"deep": json.loads("[" * 40 + "]" * 40)},
        ),
        event(user_id="p-batch", request_id="b-3", error_message=DEEP_TEXT),
    ]
    text = (
        json.dumps({"events": events})[:-2] + ', {"user_id": "p-batch", "model": "m", "metadata": {"s": "\\ud800"}}]}'
    )
    response = _post_raw(api, "/v1/usage/batch", text)
    assert response.status_code == 200, response.text
    statuses = [item["status"] for item in response.json()["results"]]
    assert statuses == ["stored", "rejected", "stored", "rejected"]
    assert api.get("/v1/users/p-batch/requests/today", headers=SERVER).json()["count"] == 2


def test_an_answer_that_cannot_be_rendered_is_a_json_500_with_a_correlation_id(
    api: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if a row stored by an older version (or another writer) held a lone surrogate: the answer cannot render.
    service = api.app.service
    original = service.get_daily_usage

    def unrenderable(*args: object, **kwargs: object) -> object:
        return original(*args, **kwargs).model_copy(update={"user_id": "bad\ud800"})  # type: ignore[arg-type]

    monkeypatch.setattr(service, "get_daily_usage", unrenderable)
    response = api.get("/v1/users/p-render/usage/daily", headers=SERVER)
    assert response.status_code == 500
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()["error"]
    assert body["code"] == "internal_error" and body["correlation_id"] == response.headers["X-Correlation-Id"]


# -- 8. bad input is refused before it can hurt ------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"user_id": "player\x1b[31m"}, "user_id"),
        ({"request_id": "r\x00"}, "request_id"),
        ({"tenant_id": "t\n1"}, "tenant_id"),
        ({"model": "gpt\r4o"}, "model"),
        ({"provider": "open\x7fai"}, "provider"),
        ({"session_id": "s\x85x"}, "session_id"),
        ({"character_id": "c\x07"}, "character_id"),
        ({"user_id": "guild/player"}, "user_id"),
        ({"session_id": "a/b"}, "session_id"),
    ],
)
def test_control_characters_and_slashes_in_ids_are_refused_naming_the_field(
    ledger: UsageTrackingService, overrides: dict[str, str], field: str
) -> None:
    with pytest.raises(ValidationFailed) as raised:
        ledger.log_usage(**{"user_id": "p", "model": "gpt-4o", **overrides})
    assert [f.field for f in raised.value.fields] == [field]
    assert ledger.list_events().items == []


def test_error_messages_may_hold_newlines_but_not_broken_unicode(ledger: UsageTrackingService) -> None:
    stored = ledger.log_usage(user_id="p", model="gpt-4o", error_message="line 1\nline 2\ttab")
    assert stored.status is LogStatus.STORED


def test_the_batch_limit_fits_a_thousand_maximal_events_and_no_more_than_a_mebibyte_over() -> None:
    assert MAX_BATCH_EVENTS * maximal_event_bytes() + len('{"events":[]}') + MAX_BATCH_EVENTS <= BATCH_BODY_LIMIT
    assert BATCH_BODY_LIMIT - MAX_BATCH_EVENTS * maximal_event_bytes() <= 1024 * 1024


def test_a_thousand_maximal_events_are_accepted_in_one_batch(api: LiveServer) -> None:
    big = {
        "user_id": "p-max",
        "model": "m" * 200,
        "error_message": "e" * 2000,
        "metadata": {"k": "v" * (4096 - len('{"k":""}'))},
        "session_id": "s" * 128,
        "character_id": "c" * 128,
        "tenant_id": "t" * 128,
    }
    events = [{**big, "request_id": f"max-{i:04d}" + "r" * 119} for i in range(MAX_BATCH_EVENTS)]
    response = api.post("/v1/usage/batch", json={"events": events}, headers=SERVER)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["stored"] == MAX_BATCH_EVENTS


def test_a_store_outage_answer_names_no_server_path(tmp_path: Path) -> None:
    db_path = tmp_path / "secret-place" / "usage.db"
    store = SQLiteUsageStore(db_path)
    app = make_app(db_path, store=store)
    db_path.unlink()
    db_path.parent.chmod(0o500)  # the next write cannot create its journal
    try:
        with live_server(app, "wsgi") as server:
            os.chmod(db_path.parent, 0o000)
            response = server.post("/v1/usage", json=event(), headers=SERVER)
    finally:
        db_path.parent.chmod(0o700)
        app.close()
    assert response.status_code in (500, 503)
    assert "secret-place" not in response.text and str(tmp_path) not in response.text


# -- 3. the rate limiter's count is fail-open and fast; writes wait one deadline ---------------------------------
def _hold_the_write_lock(db_path: Path, release: threading.Event) -> threading.Thread:
    """Another process's writer, stalled inside its transaction (SQLite's own lock, not our lock file)."""
    ready = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(db_path, isolation_level=None, timeout=0)
        conn.execute("BEGIN EXCLUSIVE")
        ready.set()
        release.wait(30)
        conn.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    ready.wait(10)
    return thread


def test_opening_an_up_to_date_store_and_counting_do_not_wait_for_a_stalled_writer(
    tmp_path: Path, price_book: PriceBook
) -> None:
    db_path = tmp_path / "usage.db"
    first = SQLiteUsageStore(db_path)
    UsageTrackingService(first, price_book, clock=lambda: NOW).log_usage(user_id="p", model="gpt-4o")
    release = threading.Event()
    holder = _hold_the_write_lock(db_path, release)
    try:
        started = time.monotonic()
        worker = SQLiteUsageStore(db_path, busy_timeout_ms=60_000)  # a new server worker, or `ai-usage daily`
        count = UsageTrackingService(worker, price_book, clock=lambda: NOW).request_count_today("p")
        elapsed = time.monotonic() - started
    finally:
        release.set()
        holder.join()
    assert (count.count, count.degraded) == (1, False)
    assert elapsed < 30  # waited for nothing (before: the migration's BEGIN IMMEDIATE waited 6 x 60 s)
    worker.close()
    first.close()


def test_a_write_behind_a_stalled_writer_fails_after_one_busy_timeout_not_six(
    tmp_path: Path, price_book: PriceBook
) -> None:
    db_path = tmp_path / "usage.db"
    store = SQLiteUsageStore(db_path, busy_timeout_ms=400)
    ledger = UsageTrackingService(store, price_book, clock=lambda: NOW)
    release = threading.Event()
    holder = _hold_the_write_lock(db_path, release)
    try:
        started = time.monotonic()
        with pytest.raises(StoreError):
            ledger.log_usage(user_id="p", model="gpt-4o")
        elapsed = time.monotonic() - started
    finally:
        release.set()
        holder.join()
        store.close()
    assert elapsed < 6 * 0.4  # one deadline in all (before: up to six, plus back-off between them)


def test_the_count_answers_degraded_within_its_deadline_when_the_store_cannot_read(
    tmp_path: Path, price_book: PriceBook, captured_logs: list[dict]
) -> None:
    db_path = tmp_path / "usage.db"
    settings = Settings(db_path=db_path, count_deadline_ms=200)
    store = SQLiteUsageStore(db_path, busy_timeout_ms=60_000)
    UsageTrackingService(store, price_book, clock=lambda: NOW).log_usage(user_id="p", model="gpt-4o")
    store.close()  # a worker between connections: its next read opens a new one
    # Another process in exclusive locking mode keeps the lock after its transaction, so even WAL readers
    # meet a busy database: the one case a reader waits for a lock.
    blocker = sqlite3.connect(db_path, isolation_level=None, timeout=10)
    blocker.execute("PRAGMA locking_mode = EXCLUSIVE")
    blocker.execute("BEGIN EXCLUSIVE")
    blocker.execute("COMMIT")
    try:
        started = time.monotonic()
        count = UsageTrackingService(store, price_book, clock=lambda: NOW, settings=settings).request_count_today("p")
        elapsed = time.monotonic() - started
    finally:
        blocker.close()
        store.close()
    assert (count.count, count.degraded) == (0, True)
    assert elapsed < 5  # the deadline (0.2 s), not the busy timeout (60 s)
    assert any(e["event"] == "rate_limit.count_degraded" for e in captured_logs)


# -- 6. files are private ----------------------------------------------------------------------------------------
def test_the_data_directory_and_database_files_are_private(tmp_path: Path, price_book: PriceBook) -> None:
    os.umask(0o022)
    db_path = tmp_path / "data" / "usage.db"
    store = SQLiteUsageStore(db_path)
    UsageTrackingService(store, price_book, clock=lambda: NOW).log_usage(user_id="p", model="gpt-4o")
    try:
        assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700
        for path in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm"), Path(f"{db_path}.lock")):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    finally:
        store.close()


def test_an_existing_world_readable_database_is_made_private_on_open(tmp_path: Path) -> None:
    db_path = tmp_path / "usage.db"
    SQLiteUsageStore(db_path).close()
    db_path.chmod(0o644)
    SQLiteUsageStore(db_path).close()
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600


# -- 7. free by rule is visible on the row and in summaries ------------------------------------------------------
def test_free_by_rule_is_on_the_row_and_counted_in_every_summary(ledger: UsageTrackingService) -> None:
    local = ledger.log_usage(user_id="p", model="ollama/llama3", tokens_input=100, tokens_output=10)
    variant = ledger.log_usage(user_id="p", model="meta-llama/llama-3.3-70b-instruct:free", tokens_input=100)
    hinted = ledger.log_usage(user_id="p", model="anthropic/claude-3.5-sonnet", provider="ollama", tokens_input=1000)
    assert (local.log.price_rule, local.log.cost_nano) == ("free_local", 0)
    assert (variant.log.price_rule, variant.log.cost_nano) == ("free_variant", 0)
    assert hinted.log.price_rule == "book" and hinted.log.cost_nano == 3_000_000  # the contract, not $0
    assert ledger.get_daily_usage("p").free_requests == 2
    assert ledger.get_monthly_cost("p").free_requests == 2
    assert ledger.get_global_daily_usage().free_requests == 2
