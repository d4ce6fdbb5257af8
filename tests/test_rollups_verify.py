"""`rollups verify` finds every rollup counter that disagrees with the raw events, and `rollups rebuild` repairs it,
on SQLite and on Appwrite (including a deployment still holding the rollup kinds of an earlier version)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from models.ai_usage import TaskType
from services.rollup_maintenance import Difference, rebuild, verify
from services.store.appwrite_rows import rollup_row_id
from services.store.appwrite_store import ROLLUPS_TABLE, AppwriteUsageStore
from services.store.protocol import UsageStore
from services.store.rollups import RollupKind
from services.store.sqlite_store import SQLiteUsageStore
from tests.appwrite_support import make_appwrite_store
from tests.factories import BASE_TIME, make_log
from tests.tablesdb_double import TablesDBDouble


def ledger() -> list[Any]:
    """Three players over two months, two tenants, sessions, durations, a failure: every kind gets rows."""
    logs = []
    for i in range(12):
        logs.append(
            make_log(
                user_id=f"p{i % 3}",
                tenant_id="studio" if i % 4 == 0 else None,
                session_id=f"s{i % 2}" if i % 3 else None,
                task_type=list(TaskType)[i % 3],
                timestamp=BASE_TIME - timedelta(days=(i % 4) * 12, hours=i),
                request_duration_ms=37 * i + 5,
                success=i != 7,
                feature="quests" if i % 5 == 0 else None,
            )
        )
    logs.append(make_log(user_id="p9", task_type=TaskType.STORY_PROGRESSION))  # the default tenant's, on BASE_TIME
    return logs


def _raw(store: AppwriteUsageStore, method: str, path: str, params: dict[str, Any]) -> Any:
    # As JSON, not through SDK 27's Row model, which rejects 1.8's integer $sequence (see appwrite_store).
    client = store.db.client
    headers = {"X-Appwrite-Project": client.get_config("project"), "content-type": "application/json"}
    return client.call(method, f"/tablesdb/{store.database_id}/tables/{ROLLUPS_TABLE}/rows{path}", headers, params)


def set_counter(store: UsageStore, key: tuple[str, str, str, str], counter: str, value: int) -> None:
    """Edit one stored rollup row behind the store's back (a row of a shared kind: its shard 0)."""
    kind, scope, bucket, dim = key
    if isinstance(store, SQLiteUsageStore):
        sql = f"UPDATE rollups SET {counter} = ? WHERE kind = ? AND scope = ? AND bucket = ? AND dim = ?"
        assert store._conn().execute(sql, (value, kind, scope, bucket, dim)).rowcount == 1
    else:
        assert isinstance(store, AppwriteUsageStore)
        _raw(store, "patch", f"/{rollup_row_id(kind, scope, bucket, dim, 0)}", {"data": {counter: value}})


def add_old_kind_row(store: UsageStore, kind: str, bucket: str) -> None:
    """A rollup row of a kind an earlier version wrote and this one no longer defines."""
    if isinstance(store, SQLiteUsageStore):
        sql = "INSERT INTO rollups (scope, kind, bucket, dim, requests, cost_nano) VALUES ('', ?, ?, '', 3, 99)"
        store._conn().execute(sql, (kind, bucket))
    else:
        assert isinstance(store, AppwriteUsageStore)
        row = {"kind": kind, "scope": "", "bucket": bucket, "dim": "", "shard": 0, "requests": 3, "cost_nano": 99}
        _raw(store, "post", "", {"rowId": rollup_row_id(kind, "", bucket, "", 0), "data": row})


def test_a_clean_ledger_verifies_with_no_differences_over_all_time_and_a_range(store: UsageStore) -> None:
    logs = ledger()
    store.record(logs)
    rebuild(store)  # records today's definition on Appwrite (SQLite has it from opening)
    report = verify(store)
    assert (report.difference_count, report.events, report.kinds_skipped) == (0, len(logs), {})
    assert report.rows_expected == report.rows_stored > 12 and report.definition_current
    ranged = verify(store, date(2026, 11, 1), date(2026, 11, 30))
    in_november = sum(log.timestamp.month == 11 for log in logs)
    assert ranged.difference_count == 0 and ranged.events == in_november < len(logs)
    assert set(ranged.kinds_skipped) == {"user_model", "session"} and "user_day" in ranged.kinds_checked
    cut = verify(store, date(2026, 11, 2), date(2026, 11, 23))
    assert set(cut.kinds_skipped) == {"user_model", "session"} and cut.difference_count == 0


def test_a_corrupted_counter_is_reported_exactly_and_rebuild_repairs_it(store: UsageStore) -> None:
    store.record(ledger())
    rebuild(store)
    day = BASE_TIME.date().isoformat()
    cost = store.get_rollups(RollupKind.USER_DAY, "p9", day)["story_progression"].cost_nano
    set_counter(store, ("user_day", "p9", day, "story_progression"), "cost_nano", cost + 5)
    expected = Difference(kind="user_day", scope="p9", bucket=day, dim="story_progression", counter="cost_nano",
                          stored=cost + 5, expected=cost)  # fmt: skip
    assert verify(store).differences == [expected]
    assert verify(store, BASE_TIME.date(), BASE_TIME.date()).differences == [expected]
    assert verify(store, date(2026, 11, 24), None).difference_count == 0  # another range does not see it
    repaired = rebuild(store)
    assert repaired.rows_written == 1 and repaired.rows_deleted == 0
    assert verify(store).difference_count == 0
    assert store.get_rollups(RollupKind.USER_DAY, "p9", day)["story_progression"].cost_nano == cost


def test_rows_of_a_removed_kind_are_reported_and_rebuild_deletes_them(store: UsageStore) -> None:
    store.record(ledger())
    rebuild(store)
    add_old_kind_row(store, "global_day", "2026-11-23")
    report = verify(store, date(2026, 12, 1), None)  # stale rows are reported whatever the range
    assert report.differences == [
        Difference(kind="global_day", scope="", bucket="2026-11-23", dim="", counter="row", stored=1, expected=0)
    ]
    assert rebuild(store).rows_deleted == 1
    assert verify(store).difference_count == 0


def test_rebuilding_twice_changes_nothing(store: UsageStore) -> None:
    store.record(ledger())
    first = rebuild(store)
    second = rebuild(store)
    assert (second.rows_written, second.rows_deleted, second.rows_unchanged) == (0, 0, first.rows)
    assert second.events == len(ledger()) and not second.events_arrived


@pytest.fixture
def appwrite(tmp_path: Path) -> Iterator[tuple[AppwriteUsageStore, TablesDBDouble]]:
    with TablesDBDouble() as double:
        store = make_appwrite_store(double)
        yield store, double
        store.close()


@pytest.mark.appwrite
def test_an_interrupted_appwrite_rebuild_is_finished_by_the_next(
    appwrite: tuple[AppwriteUsageStore, TablesDBDouble], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = appwrite
    store.record(ledger())
    day = BASE_TIME.date().isoformat()
    for task in TaskType:
        for player in ("p9", "studio\x1fp0", "studio\x1fp1", "studio\x1fp2"):
            if task in store.get_rollups(RollupKind.USER_DAY, player, day):
                set_counter(store, ("user_day", player, day, task), "requests", 0)
    broken = verify(store).difference_count
    assert broken > 2
    commits = {"n": 0}
    real = store.db.update_transaction

    def crash_after_two(transaction_id: str, **kwargs: Any) -> Any:
        commits["n"] += 1
        if commits["n"] > 2:
            raise RuntimeError("the process was killed")
        return real(transaction_id, **kwargs)

    monkeypatch.setattr(store.db, "update_transaction", crash_after_two)
    with pytest.raises(RuntimeError):
        rebuild(store, ops_per_transaction=1, rows_per_op=1)
    monkeypatch.undo()
    after_crash = verify(store)
    assert 0 < after_crash.difference_count < broken and not after_crash.definition_current
    resumed = rebuild(store, ops_per_transaction=1, rows_per_op=1)
    assert resumed.rows_written > 0 and resumed.rows_unchanged > 0
    final = verify(store)
    assert final.difference_count == 0 and final.definition_current


@pytest.mark.appwrite
def test_a_lost_commit_answer_is_written_again_with_the_same_values(
    appwrite: tuple[AppwriteUsageStore, TablesDBDouble],
) -> None:
    from tests.tablesdb_double.faults import Fault

    store, double = appwrite
    store.record(ledger())
    set_counter(store, ("user_day", "p9", BASE_TIME.date().isoformat(), "story_progression"), "tokens_input", 1)
    lost = Fault(method="PATCH", path=r"/transactions/", kind="lost_answer", times=1)
    double.inject(lost)
    rebuild(store)
    assert lost.exhausted  # a commit was applied and its answer lost: the transaction was staged and sent again
    assert verify(store).difference_count == 0
