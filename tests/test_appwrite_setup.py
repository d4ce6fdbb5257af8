"""Schema set-up from appwrite.json against the strict local TablesDB server: create, re-run, add, report."""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from appwrite.query import Query
from click.testing import CliRunner

from models.ai_usage import (
    MAX_ERROR_MESSAGE_CHARS,
    MAX_ID_CHARS,
    MAX_METADATA_BYTES,
    MAX_MODEL_CHARS,
    AIUsageLog,
    log_id_for,
)
from models.counters import COUNTER_FIELDS
from models.usage_kinds import COST_COUNTERS
from services.cli import cli
from services.store.appwrite_rows import event_data
from services.store.appwrite_schema import (
    INT32_MAX,
    Provisioner,
    SchemaError,
    SchemaSpec,
    TableSpec,
    column_diff,
    load_schema,
)
from services.store.appwrite_store import EVENTS_TABLE, ROLLUPS_TABLE, AppwriteUsageStore
from services.store.protocol import EventFilter
from services.store.rollups import RollupKind
from tests.appwrite_support import DATABASE_ID, make_appwrite_store, tables_db_for
from tests.conftest import APPWRITE_VERSIONS
from tests.factories import make_log
from tests.tablesdb_double import TablesDBDouble

pytestmark = pytest.mark.appwrite
INT64_MAX = 2**63 - 1


@pytest.fixture(params=APPWRITE_VERSIONS)
def double(request: pytest.FixtureRequest) -> Iterator[TablesDBDouble]:
    with TablesDBDouble(column_ready_after=0.05, server_version=request.param) as running:
        yield running


def provisioner(double: TablesDBDouble) -> Provisioner:
    return Provisioner(tables_db_for(double), poll_seconds=0.01)


def server_columns(double: TablesDBDouble, table_id: str) -> dict[str, dict]:
    path = f"/tablesdb/{DATABASE_ID}/tables/{table_id}/columns"
    answer = tables_db_for(double).client.call(
        "get", path, {"X-Appwrite-Project": double.project_id}, {"queries": [Query.limit(100)]}
    )
    return {column["key"]: column for column in answer["columns"]}


def without(spec: SchemaSpec, table_id: str, column: str | None = None, index: str | None = None) -> SchemaSpec:
    tables = []
    for table in spec.tables:
        if table.id == table_id:
            table = TableSpec(
                table.id,
                table.name,
                tuple(c for c in table.columns if c["key"] != column),
                tuple(i for i in table.indexes if i["key"] != index),
            )
        tables.append(table)
    return SchemaSpec(spec.database_id, spec.database_name, tuple(tables))


def test_appwrite_json_declares_every_stored_field_with_the_models_limits() -> None:
    spec = load_schema()
    events = {c["key"]: c for c in spec.table(EVENTS_TABLE).columns}
    derived = {"estimated_cost", "estimated_cost_exact"}  # exact from cost_nano; money is stored as nano-USD
    split = {"cost_nano_by_kind"}  # stored as a column per part, cost_nano_<part>
    assert set(AIUsageLog.model_fields) - derived - split <= set(events)
    assert set(COST_COUNTERS) <= set(events)
    assert {"day", "month", "timestamp"} <= set(events)
    for key in ("request_id", "user_id", "tenant_id", "session_id", "character_id"):
        assert events[key]["size"] == MAX_ID_CHARS, key
    assert events["model"]["size"] == MAX_MODEL_CHARS
    assert events["error_message"]["size"] == MAX_ERROR_MESSAGE_CHARS
    assert events["timestamp"]["type"] == "datetime"
    assert events["metadata"]["type"] == "string"
    assert events["metadata"]["size"] >= MAX_METADATA_BYTES  # chars; JSON of N bytes has at most N chars
    # Only column types every supported server has: self-hosted 1.8 lacks varchar/text/bigint.
    for table in spec.tables:
        assert {c["type"] for c in table.columns} <= {"string", "integer", "double", "boolean", "datetime"}
    assert events["cost_nano"]["max"] == INT64_MAX
    rollups = {c["key"]: c for c in spec.table(ROLLUPS_TABLE).columns}
    for name in COUNTER_FIELDS:
        assert (rollups[name]["type"], rollups[name]["max"], rollups[name]["default"]) == ("integer", INT64_MAX, 0)
    assert {i["key"]: i["columns"] for i in spec.table(ROLLUPS_TABLE).indexes} == {
        "kind_scope_bucket": ["kind", "scope", "bucket"],
        "kind_bucket": ["kind", "bucket"],  # series and breakdowns over every tenant
        "kind_bucket_cost": ["kind", "bucket", "cost_nano"],  # the top players of a day
    }
    index_columns = [i["columns"] for i in spec.table(EVENTS_TABLE).indexes]
    assert ["user_id", "timestamp"] in index_columns and ["session_id"] in index_columns and ["day"] in index_columns


def test_appwrite_json_keys_the_cli_needs_are_present() -> None:
    doc = json.loads(Path(__file__).resolve().parents[1].joinpath("appwrite.json").read_text())
    assert doc["projectId"]
    assert [db["$id"] for db in doc["tablesDB"]] == [DATABASE_ID]
    for table in doc["tables"]:
        # CLI 25 defaults rowSecurity to true when it is omitted (appwrite-facts §5): say false explicitly.
        assert table["rowSecurity"] is False and table["databaseId"] == DATABASE_ID
        assert all("columns" in index and "attributes" not in index for index in table["indexes"])


def test_setup_on_an_empty_server_creates_everything_available_and_64_bit(double: TablesDBDouble) -> None:
    spec = load_schema()
    report = provisioner(double).provision(spec)
    assert report.created[0] == f"database {DATABASE_ID}"
    expected = [f"table {t.id}" for t in spec.tables]
    expected += [f"column {DATABASE_ID}/{t.id}.{c['key']}" for t in spec.tables for c in t.columns]
    expected += [f"index {DATABASE_ID}/{t.id}.{i['key']}" for t in spec.tables for i in t.indexes]
    assert sorted(report.created[1:]) == sorted(expected) and report.differences == []
    counters = server_columns(double, ROLLUPS_TABLE)
    assert all(c["status"] == "available" for c in counters.values())
    assert counters["cost_nano"]["max"] > INT32_MAX  # an integer column bounded to 32 bits would overflow
    assert server_columns(double, EVENTS_TABLE)["cost_nano"]["max"] == INT64_MAX


def test_setup_again_on_a_populated_server_changes_nothing_and_keeps_the_rows(double: TablesDBDouble) -> None:
    store = make_appwrite_store(double)
    logs = [make_log(user_id=f"p{i}") for i in range(5)]
    store.record(logs)
    report = provisioner(double).provision(load_schema())
    assert report.created == [] and report.differences == []
    assert len(double.rows(DATABASE_ID, EVENTS_TABLE)) == 5
    assert store.get_event(logs[3].request_id) == logs[3]


def test_setup_adds_a_missing_column_and_index_waits_for_them_and_keeps_the_data(double: TablesDBDouble) -> None:
    spec = load_schema()
    provisioner(double).provision(without(spec, EVENTS_TABLE, column="character_id", index="session"))
    client = tables_db_for(double).client
    client.call(  # raw: SDK 27's Row model cannot parse a 1.8 row (integer $sequence)
        "post",
        f"/tablesdb/{DATABASE_ID}/tables/{ROLLUPS_TABLE}/rows",
        {"X-Appwrite-Project": double.project_id, "content-type": "application/json"},
        {"rowId": "keep-me", "data": {"kind": "k", "scope": "s", "bucket": "b", "dim": "", "shard": 0}},
    )
    report = provisioner(double).provision(spec)
    assert report.created == [f"column {DATABASE_ID}/events.character_id", f"index {DATABASE_ID}/events.session"]
    assert server_columns(double, EVENTS_TABLE)["character_id"]["status"] == "available"
    assert [row["$id"] for row in double.rows(DATABASE_ID, ROLLUPS_TABLE)] == ["keep-me"]
    store = make_appwrite_store(double)
    log = make_log(character_id="c-1", session_id="s-1")
    assert store.record([log]) == [True] and store.get_event(log.request_id) == log


def test_setup_reports_differences_and_extra_columns_without_touching_them(double: TablesDBDouble) -> None:
    spec = load_schema()
    provisioner(double).provision(spec)
    db = tables_db_for(double)
    db.create_integer_column(DATABASE_ID, EVENTS_TABLE, "legacy_note", False)
    narrower = []
    for table in spec.tables:
        columns = [dict(c, size=64) if c["key"] == "user_id" else c for c in table.columns]
        narrower.append(TableSpec(table.id, table.name, tuple(columns), table.indexes))
    report = provisioner(double).provision(SchemaSpec(spec.database_id, spec.database_name, tuple(narrower)))
    assert report.created == []
    assert f"column {DATABASE_ID}/events.user_id: size is {MAX_ID_CHARS}, declared 64" in report.differences
    assert f"column {DATABASE_ID}/events.legacy_note: on the server but not declared (kept)" in report.differences
    assert server_columns(double, EVENTS_TABLE)["user_id"]["size"] == MAX_ID_CHARS


def test_setup_fails_naming_a_declared_column_the_server_could_not_build(double: TablesDBDouble) -> None:
    spec = load_schema()
    provisioner(double).provision(without(spec, EVENTS_TABLE, column="character_id"))
    # Created as set-up creates it, then broken by the server's worker:
    provisioner(double)._create_column(DATABASE_ID, EVENTS_TABLE, spec.table(EVENTS_TABLE).column("character_id"))
    double.fail_column(DATABASE_ID, EVENTS_TABLE, "character_id", "disk full")
    with pytest.raises(SchemaError, match=r"columns of .*events failed on the server: \{'character_id': 'disk full'\}"):
        provisioner(double).provision(spec)


def test_setup_does_not_fail_on_a_failed_column_it_does_not_declare(double: TablesDBDouble) -> None:
    spec = load_schema()
    provisioner(double).provision(spec)
    tables_db_for(double).create_integer_column(DATABASE_ID, EVENTS_TABLE, "legacy_broken", False)
    double.fail_column(DATABASE_ID, EVENTS_TABLE, "legacy_broken")
    report = provisioner(double).provision(spec)
    assert report.created == []
    assert report.differences == [f"column {DATABASE_ID}/events.legacy_broken: on the server but not declared (kept)"]


@pytest.mark.parametrize(
    ("actual", "differences"),
    [
        ({"type": "string", "size": 128}, []),
        ({"type": "varchar", "size": 128}, []),  # the 1.9-only layout this schema had before
        ({"type": "varchar", "size": 64}, ["size is 64, declared 128"]),
        ({"type": "text", "size": 65535}, []),  # 128 characters fit in 65,535 bytes
        ({"type": "integer"}, ["type is 'integer', declared 'string'"]),
    ],
)
def test_an_existing_column_that_stores_the_declared_strings_is_no_difference(
    actual: dict[str, typing.Any], differences: list[str]
) -> None:
    declared = {"key": "user_id", "type": "string", "size": 128, "required": True}
    assert column_diff(declared, {"key": "user_id", "required": True, **actual}) == differences


def test_a_text_column_too_small_for_the_declared_string_is_a_difference() -> None:
    declared = {"key": "blob", "type": "string", "size": 20_000, "required": False}
    assert column_diff(declared, {"type": "text", "required": False}) == ["type is 'text', declared 'string'"]


def cli_env(double: TablesDBDouble) -> dict[str, str]:
    return {
        "APPWRITE_ENDPOINT": double.endpoint,
        "APPWRITE_PROJECT_ID": double.project_id,
        "APPWRITE_API_KEY": double.api_key,
        "APPWRITE_DATABASE_ID": "game_ledger",
    }


def test_cli_setup_creates_then_reports_nothing_to_do(double: TablesDBDouble) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["appwrite", "setup"], env=cli_env(double))
    assert first.exit_code == 0, first.output
    assert "created database game_ledger" in first.output
    again = runner.invoke(cli, ["appwrite", "setup", "--json"], env=cli_env(double))
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)  # stderr carries the log lines (the server warning)
    assert (report["database_id"], report["created"], report["differences"]) == ("game_ledger", [], [])


def test_cli_setup_without_appwrite_settings_names_the_missing_variables() -> None:
    env: dict[str, typing.Any] = {"APPWRITE_ENDPOINT": None, "APPWRITE_PROJECT_ID": None, "APPWRITE_API_KEY": None}
    result = CliRunner().invoke(cli, ["appwrite", "setup"], env=env)
    assert result.exit_code == 2
    assert "APPWRITE_ENDPOINT: not set" in result.output and "APPWRITE_API_KEY: not set" in result.output


def _create_row_raw(tables_db: typing.Any, row_id: str, data: dict[str, typing.Any]) -> None:
    # As JSON, not through SDK 27's Row model, which rejects 1.8's integer $sequence (see appwrite_store).
    client = tables_db.client
    headers = {"X-Appwrite-Project": client.get_config("project"), "content-type": "application/json"}
    client.call("post", f"/tablesdb/game_ledger/tables/{EVENTS_TABLE}/rows", headers, {"rowId": row_id, "data": data})


def test_cli_setup_moves_events_stored_before_tenants_scoped_the_key_and_a_replay_then_is_a_duplicate(
    double: TablesDBDouble,
) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["appwrite", "setup"], env=cli_env(double)).exit_code == 0
    tables_db = tables_db_for(double)
    # An event of tenant studio-a as the earlier version stored it: its row id from the request id alone.
    old = make_log(request_id="r-old", tenant_id="studio-a")
    old_id = log_id_for("r-old")
    data = {**event_data(old), "log_id": old_id}
    _create_row_raw(tables_db, old_id, data)
    untouched = make_log(request_id="r-plain")
    _create_row_raw(tables_db, untouched.log_id, event_data(untouched))

    first = runner.invoke(cli, ["appwrite", "setup", "--json"], env=cli_env(double))
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["rekeyed"] == 1
    again = runner.invoke(cli, ["appwrite", "setup", "--json"], env=cli_env(double))
    assert json.loads(again.stdout)["rekeyed"] == 0

    store = AppwriteUsageStore(tables_db, "game_ledger")
    stored_ids = sorted(log.log_id for log in store.list_events(EventFilter()).items)
    assert stored_ids == sorted([log_id_for("r-old", "studio-a"), untouched.log_id])
    moved = store.get_event("r-old", "studio-a")
    assert moved is not None and moved.log_id == log_id_for("r-old", "studio-a")
    assert moved.model_dump(exclude={"log_id"}) == old.model_dump(exclude={"log_id"})
    assert store.record([moved]) == [False]  # the replay is recognised under the tenant's key
    tables_db.client.close()


def test_cli_setup_gives_rollups_written_before_the_cost_split_their_unsplit_cost(double: TablesDBDouble) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["appwrite", "setup"], env=cli_env(double)).exit_code == 0
    store = AppwriteUsageStore(tables_db_for(double), "game_ledger")
    # As an earlier version wrote them: a cost, and no split of it by kind.
    store.record([make_log(user_id="old", cost_nano=5_000, cost_nano_by_kind={})])
    store.record([make_log(user_id="old", cost_nano=7_000)])  # one since, split
    first = runner.invoke(cli, ["appwrite", "setup", "--json"], env=cli_env(double))
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["rollups_split"] > 0
    again = runner.invoke(cli, ["appwrite", "setup", "--json"], env=cli_env(double))
    assert json.loads(again.stdout)["rollups_split"] == 0
    day = store.get_rollups(RollupKind.USER_DAY, "old", "2026-11-23")
    total = sum(c.cost_nano for c in day.values())
    parts = {part: sum(c.cost_nano_by_kind[part] for c in day.values()) for part in ("unsplit", "tokens_input")}
    assert (total, parts) == (12_000, {"unsplit": 5_000, "tokens_input": 7_000})
    store.close()


def test_cli_setup_settles_the_price_rule_of_older_events_and_counts_their_free_ones(double: TablesDBDouble) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["appwrite", "setup"], env=cli_env(double)).exit_code == 0
    tables_db = tables_db_for(double)
    # Two events as an earlier version stored them: no price_rule column value, no free_requests counted.
    free = make_log(user_id="old", model="ollama/llama3", price_model_id="ollama/llama3", cost_nano=0)
    paid = make_log(user_id="old")
    for log in (free, paid):
        data = {k: v for k, v in event_data(log).items() if k != "price_rule"}
        _create_row_raw(tables_db, log.log_id, data)
    first = runner.invoke(cli, ["appwrite", "setup", "--json"], env=cli_env(double))
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["price_rules_settled"] == 2
    again = runner.invoke(cli, ["appwrite", "setup", "--json"], env=cli_env(double))
    assert json.loads(again.stdout)["price_rules_settled"] == 0
    store = AppwriteUsageStore(tables_db, "game_ledger")
    assert store.get_event(free.request_id).price_rule == "free_local"
    day = store.get_rollups(RollupKind.USER_DAY, "old", "2026-11-23")
    assert sum(c.free_requests for c in day.values()) == 1
    store.close()
