"""`ai-usage rollups verify|rebuild` and the backfill `ai-usage appwrite setup` runs when the rollup definition
changed: an Appwrite deployment holding an earlier version's kinds, and none of today's, is rebuilt and verifies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from appwrite.query import Query
from click.testing import CliRunner

from services.cli import cli
from services.errors import StoreError
from services.pricing import PriceBook
from services.store.appwrite_rebuild import META_ROW_ID
from services.store.appwrite_rows import rollup_row_id
from services.store.appwrite_store import ROLLUPS_TABLE, AppwriteUsageStore
from services.store.rollups import RollupKind
from services.store.sqlite_store import SQLiteUsageStore
from services.usage_tracking_service import UsageTrackingService
from tests.appwrite_support import tables_db_for
from tests.factories import BASE_TIME
from tests.tablesdb_double import TablesDBDouble
from tests.test_rollups_verify import _raw, add_old_kind_row, ledger, set_counter

DAY = BASE_TIME.date().isoformat()


def run(args: list[str], env: dict[str, Any] | None = None) -> Any:
    return CliRunner().invoke(cli, args, env=env)


def test_verify_exits_1_naming_the_difference_and_rebuild_repairs_it(db_path: Path) -> None:
    store = SQLiteUsageStore(db_path)
    store.record(ledger())
    set_counter(store, ("user_day", "p9", DAY, "story_progression"), "requests", 7)
    store.close()
    clean_range = run(["rollups", "verify", "--start", "2026-11-24", "--end", "2026-11-30"])
    assert clean_range.exit_code == 0, clean_range.output
    found = run(["rollups", "verify", "--json"])
    assert found.exit_code == 1
    report = json.loads(found.stdout)
    assert (report["clean"], report["difference_count"]) == (False, 1)
    assert report["differences"][0] == {"kind": "user_day", "scope": "p9", "bucket": DAY, "dim": "story_progression",
                                        "counter": "requests", "stored": 7, "expected": 1}  # fmt: skip
    table = run(["rollups", "verify", "--start", DAY, "--end", DAY])
    assert table.exit_code == 1 and "story_progression" in table.output and "user_model not checked" in table.output
    assert run(["rollups", "rebuild"]).exit_code == 1  # it asks first, and no answer aborts
    rebuilt = run(["rollups", "rebuild", "--yes", "--json"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json.loads(rebuilt.stdout)["rows_written"] == 1
    assert run(["rollups", "verify"]).exit_code == 0


def test_verify_refuses_an_end_before_the_start_naming_it(db_path: Path) -> None:
    result = run(["rollups", "verify", "--start", "2026-11-24", "--end", "2026-11-01"])
    assert result.exit_code == 2 and "--end: must not be before --start" in result.output
    assert run(["rollups", "verify", "--start", "24/11/2026"]).exit_code == 2


@pytest.fixture
def double(db_path: Path) -> Iterator[TablesDBDouble]:
    with TablesDBDouble(column_ready_after=0.01) as running:
        yield running


def appwrite_env(double: TablesDBDouble) -> dict[str, str]:
    return {"APPWRITE_ENDPOINT": double.endpoint, "APPWRITE_PROJECT_ID": double.project_id,
            "APPWRITE_API_KEY": double.api_key, "APPWRITE_DATABASE_ID": "game_ledger"}  # fmt: skip


REMOVED_KINDS = ("global_day", "global_day_model", "global_day_provider", "user_month", "tenant_day_detail")


def as_an_earlier_version_left_it(store: AppwriteUsageStore) -> None:
    """No recorded definition, rows of removed kinds (the global ones, the month and the four-way detail day), none of
    the tenant kinds, new counters at zero."""
    client = store.db.client
    headers = {"X-Appwrite-Project": client.get_config("project"), "content-type": "application/json"}
    path = f"/tablesdb/game_ledger/tables/{ROLLUPS_TABLE}/rows"
    new_kinds = ["player_day", "tenant_hour", "tenant_day", "tenant_day_task", "tenant_day_feature"]
    client.call("delete", path, headers, {"queries": [Query.equal("kind", new_kinds)]})
    client.call("delete", f"{path}/{META_ROW_ID}", headers, {})
    for kind in REMOVED_KINDS:
        add_old_kind_row(store, kind, DAY)
    # A kind still defined whose dim changed: the tenant's day by provider alone, before it was by provider × model.
    row = {"kind": "tenant_day", "scope": "", "bucket": DAY, "dim": "openai", "shard": 0, "requests": 3}
    _raw(store, "post", "", {"rowId": rollup_row_id("tenant_day", "", DAY, "openai", 0), "data": row})
    set_counter(store, ("user_day", "p9", DAY, "story_progression"), "latency_ms_total", 0)


@pytest.mark.appwrite
def test_setup_backfills_an_earlier_versions_rollups_and_then_verifies_clean(double: TablesDBDouble) -> None:
    env = appwrite_env(double)
    first = run(["appwrite", "setup", "--json"], env)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["rollups_backfilled"]["events"] == 0  # a new deployment records its definition
    store = AppwriteUsageStore(tables_db_for(double), "game_ledger")
    logs = ledger()
    store.record(logs)
    as_an_earlier_version_left_it(store)
    assert set(store.get_rollups(RollupKind.TENANT_DAY, "", DAY)) == {"openai"}  # today's shape is missing
    service = UsageTrackingService(store, PriceBook.load())
    with pytest.raises(StoreError, match=r"earlier definition.*ai-usage appwrite setup"):  # 503, not a wrong answer
        service.get_tenant_daily_usage(None, BASE_TIME.date())
    before = run(["rollups", "verify", "--json"], env)
    assert before.exit_code == 1
    stale = [d for d in json.loads(before.stdout)["differences"] if d["counter"] == "row"]
    assert sorted(d["kind"] for d in stale) == sorted(REMOVED_KINDS)
    assert not json.loads(before.stdout)["definition_current"]

    setup = run(["appwrite", "setup", "--json"], env)
    assert setup.exit_code == 0, setup.output
    backfill = json.loads(setup.stdout)["rollups_backfilled"]
    assert (backfill["events"], backfill["rows_deleted"]) == (len(logs), len(REMOVED_KINDS) + 1)
    assert backfill["rows_written"] > 4
    after = run(["rollups", "verify", "--json"], env)
    assert after.exit_code == 0, after.output
    assert json.loads(after.stdout)["definition_current"]
    assert sum(c.requests for c in store.get_rollups(RollupKind.TENANT_DAY, "", DAY).values()) == 1
    assert service.get_tenant_daily_usage(None, BASE_TIME.date()).total_requests == 1
    again = run(["appwrite", "setup", "--json"], env)
    assert json.loads(again.stdout)["rollups_backfilled"] is None  # the definition is recorded: nothing to do
    store.close()
