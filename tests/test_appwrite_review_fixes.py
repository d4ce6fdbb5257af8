"""Fixes from the review of the Appwrite store, each on the strict TablesDB double: metadata at its limit, a rebuild
with long non-ASCII keys, request bodies past Appwrite's 12 MiB, a commit still running when its answer is lost,
migrations whose commit answer is lost, a re-key meeting a stored replay, and top players tied on cost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from appwrite.exception import AppwriteException

from models.ai_usage import MAX_METADATA_BYTES, log_id_for
from models.usage_kinds import COST_COUNTERS
from services.errors import StoreError
from services.rollup_maintenance import verify
from services.store import appwrite_migrations, appwrite_rebuild
from services.store.appwrite_retry import RetryPolicy
from services.store.appwrite_rows import NOT_AN_OPERATOR, decode_metadata, encode_metadata, event_data
from services.store.appwrite_store import EVENTS_TABLE, MAX_BODY_BYTES, ROLLUPS_TABLE, AppwriteUsageStore
from services.store.rollups import RollupKind
from services.store.sqlite_store import SQLiteUsageStore
from tests.appwrite_support import DATABASE_ID, make_appwrite_store, tables_db_for
from tests.factories import make_log
from tests.tablesdb_double import Fault, TablesDBDouble
from tests.tablesdb_double.http_app import PAYLOAD_MAX

pytestmark = pytest.mark.appwrite
COMMIT = r"/transactions/[^/]+$"
FAST = {"base_delay": 0.005, "max_delay": 0.05}


@pytest.fixture
def double() -> Iterator[TablesDBDouble]:
    with TablesDBDouble() as running:
        yield running


def fast_store(double: TablesDBDouble, budget: float = 10.0) -> AppwriteUsageStore:
    return make_appwrite_store(double, retry=RetryPolicy(budget_seconds=budget, **FAST))


def operator_metadata(size: int) -> dict[str, Any]:
    """Metadata naming an operator method whose compact ASCII JSON (what the validator measures) is ``size`` bytes."""
    meta = {"method": "increment", "note": ""}
    meta["note"] = "x" * (size - len(json.dumps(meta, separators=(",", ":"))))
    return meta


# -- 1. metadata ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [MAX_METADATA_BYTES - 2, MAX_METADATA_BYTES - 1, MAX_METADATA_BYTES])
def test_operator_like_metadata_up_to_the_limit_is_stored_and_read_back(double: TablesDBDouble, size: int) -> None:
    store = fast_store(double)
    log = make_log(metadata=operator_metadata(size))
    assert store.record([make_log(), log]) == [True, True]  # one event that cannot be stored fails the batch
    stored = next(row for row in double.rows(DATABASE_ID, EVENTS_TABLE) if row["$id"] == log.log_id)
    assert len(stored["metadata"]) <= MAX_METADATA_BYTES
    assert AppwriteUsageStore(store.db, DATABASE_ID).get_event(log.request_id) == log  # read from the row


def test_metadata_text_never_outgrows_what_the_validator_accepted() -> None:
    for size in range(MAX_METADATA_BYTES - 4, MAX_METADATA_BYTES + 1):
        meta = operator_metadata(size)
        text = encode_metadata(meta)
        assert len(text) <= MAX_METADATA_BYTES and decode_metadata(text) == meta
    assert encode_metadata(operator_metadata(100)).startswith("[")  # still JSON where the wrapping fits
    assert encode_metadata(operator_metadata(MAX_METADATA_BYTES)).startswith(NOT_AN_OPERATOR)
    assert decode_metadata('[{"method":"increment"}]') == {"method": "increment"}  # rows written before


def test_metadata_whose_method_is_not_a_string_is_plain_data(double: TablesDBDouble) -> None:
    store = fast_store(double)
    log = make_log(metadata={"method": ["increment"], "other": {"method": {}}})
    assert store.record([log]) == [True]  # was a TypeError (an unhashable "method") failing the batch
    assert store.get_event(log.request_id) == log


# -- 2. rebuild ----------------------------------------------------------------------------------------------------
def test_a_rebuild_writes_long_non_ascii_keys_as_record_does(double: TablesDBDouble) -> None:
    store = fast_store(double)
    log = make_log(request_id="r1", tenant_id="租" * 60, user_id="户" * 110)
    store.record([log])
    keyed = [row for row in double.rows(DATABASE_ID, ROLLUPS_TABLE) if row.get("long_key")]
    assert keyed
    tables_db_for(double).update_row(DATABASE_ID, ROLLUPS_TABLE, keyed[0]["$id"], {"requests": 5})
    assert appwrite_rebuild.rebuild(store)["rows_written"] == 1  # was a 400: long_key escaped past 1,024 chars
    assert verify(store).difference_count == 0
    again = appwrite_rebuild.rebuild(store)
    assert (again["rows_written"], again["rows_unchanged"]) == (0, again["rows"])  # the same text: equal rows
    assert AppwriteUsageStore(tables_db_for(double), DATABASE_ID).record([make_log()]) == [True]


def test_a_rebuild_that_fails_puts_the_definition_back(double: TablesDBDouble, monkeypatch: Any) -> None:
    store = fast_store(double, budget=1.0)
    store.record([make_log(request_id="r1")])
    row = next(row for row in double.rows(DATABASE_ID, ROLLUPS_TABLE) if row["kind"] != "_meta")
    tables_db_for(double).update_row(DATABASE_ID, ROLLUPS_TABLE, row["$id"], {"requests": 5})
    found = store.recorded_definition()
    refused = {"long_key": "x" * 1025}  # past the column: Appwrite refuses the commit for good (400)
    original = appwrite_rebuild.absolute_row
    monkeypatch.setattr(appwrite_rebuild, "absolute_row", lambda row_id, delta: {**original(row_id, delta), **refused})
    with pytest.raises(StoreError, match="long_key"):
        appwrite_rebuild.rebuild(store)
    assert store.recorded_definition() == found
    assert AppwriteUsageStore(tables_db_for(double), DATABASE_ID).record([make_log(request_id="r2")]) == [True]


def test_a_rebuild_keeps_each_transaction_under_the_body_limit(double: TablesDBDouble, monkeypatch: Any) -> None:
    store = fast_store(double)
    store.record([make_log(request_id=f"r{i}", user_id=f"p{i}") for i in range(40)])
    for row in double.rows(DATABASE_ID, ROLLUPS_TABLE):
        if row["kind"] != "_meta":
            tables_db_for(double).update_row(DATABASE_ID, ROLLUPS_TABLE, row["$id"], {"requests": 0})
    limit = 20_000  # two operations of five rows with every counter named
    monkeypatch.setattr(appwrite_migrations, "MAX_BODY_BYTES", limit)
    bodies: list[int] = []
    stage = store.db.create_operations

    def measured(transaction_id: str, operations: list[dict[str, Any]]) -> Any:
        bodies.append(len(json.dumps(operations)))
        return stage(transaction_id, operations)

    monkeypatch.setattr(store.db, "create_operations", measured)
    report = appwrite_rebuild.rebuild(store, rows_per_op=5)
    assert report["rows_written"] > 50 and len(bodies) > 5  # split by size: by count alone it was one transaction
    assert max(bodies) <= limit
    assert verify(store).difference_count == 0


# -- 3. request bodies ---------------------------------------------------------------------------------------------
def test_the_double_refuses_a_request_past_twelve_mib_as_appwrite_does(double: TablesDBDouble) -> None:
    url = f"{double.endpoint}/tablesdb/transactions"
    headers = {"X-Appwrite-Project": double.project_id, "X-Appwrite-Key": double.api_key}
    answer = requests.post(url, data=b" " * PAYLOAD_MAX, headers={**headers, "Content-Type": "application/json"})
    assert (answer.status_code, answer.content) == (413, b"")
    assert requests.post(url, json={"ttl": 60}, headers=headers).status_code == 201


def test_a_batch_of_long_non_ascii_events_is_split_under_the_body_limit(double: TablesDBDouble) -> None:
    emoji = "😀"  # 12 bytes escaped, as the SDK sends it
    meta = {"note": emoji * 330}
    logs = [
        make_log(request_id=f"r{i}", user_id="p1", error_message=emoji * 2000, success=False, metadata=meta,
                 model="m/" + emoji * 198)
        for i in range(1000)
    ]  # fmt: skip
    store = fast_store(double, budget=60.0)
    group = store._next_group(logs)
    assert 0 < len(group) < len(logs)
    assert len(json.dumps({"operations": store._operations(group)})) <= MAX_BODY_BYTES
    assert store.record(logs) == [True] * len(logs)  # was one 31 MB body, refused with 413
    assert len(double.rows(DATABASE_ID, EVENTS_TABLE)) == len(logs)
    assert verify(store).difference_count == 0


# -- 4. a commit still running -------------------------------------------------------------------------------------
def test_a_commit_still_applying_when_its_answer_is_lost_is_waited_for(double: TablesDBDouble) -> None:
    from tests.test_appwrite_faults import assert_stored_exactly_once

    store = fast_store(double, budget=5.0)
    log = make_log(request_id="first-time")
    double.inject(Fault(method="PATCH", path=COMMIT, kind="late_commit", delay=0.3))
    assert store.record([log]) == [True]  # was [False]: written again, it met its own event as a duplicate
    assert_stored_exactly_once(store, double, [log])


def test_a_late_commit_shows_committing_until_it_lands(double: TablesDBDouble) -> None:
    tables_db = tables_db_for(double)
    store = fast_store(double)
    transaction = tables_db.create_transaction(ttl=60)
    tables_db.create_operations(transaction.id, store._operations([make_log(request_id="late")]))
    double.inject(Fault(method="PATCH", path=COMMIT, kind="late_commit", delay=60))
    with pytest.raises(AppwriteException):  # the connection drops: a network error, code 0
        tables_db.update_transaction(transaction.id, commit=True)
    assert tables_db.get_transaction(transaction.id).status == "committing"
    assert double.rows(DATABASE_ID, EVENTS_TABLE) == []  # not visible before its database transaction ends
    tables_db.create_transaction(ttl=60)  # the next transaction: the late commit lands first
    assert tables_db.get_transaction(transaction.id).status == "committed"
    assert [row["request_id"] for row in double.rows(DATABASE_ID, EVENTS_TABLE)] == ["late"]


# -- 5. migrations whose commit answer is lost ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["lost_answer", "late_commit"])
def test_settling_price_rules_counts_a_free_event_once_when_the_answer_is_lost(
    double: TablesDBDouble, kind: str
) -> None:
    store = fast_store(double)
    log = make_log(request_id="free-1", model="ollama/llama3", provider="ollama", price_model_id="ollama/llama3",
                   price_rule="free_local", cost_nano=0)  # fmt: skip
    store.record([log])
    tables_db = tables_db_for(double)
    tables_db.update_row(DATABASE_ID, EVENTS_TABLE, log.log_id, {"price_rule": None})  # before rows kept it
    for row in double.rows(DATABASE_ID, ROLLUPS_TABLE):
        if row["kind"] != "_meta":
            tables_db.update_row(DATABASE_ID, ROLLUPS_TABLE, row["$id"], {"free_requests": 0})
    double.inject(Fault(method="PATCH", path=COMMIT, kind=kind, delay=0.2))
    assert appwrite_migrations.settle_price_rules(store) == 1
    assert verify(store).difference_count == 0  # was free_requests 2 per row


@pytest.mark.parametrize("kind", ["lost_answer", "late_commit"])
def test_splitting_old_costs_adds_once_when_the_answer_is_lost(double: TablesDBDouble, kind: str) -> None:
    store = fast_store(double)
    log = make_log(request_id="old-1", cost_nano=5000)
    store.record([log])
    tables_db = tables_db_for(double)
    tables_db.update_row(DATABASE_ID, EVENTS_TABLE, log.log_id, dict.fromkeys(COST_COUNTERS))  # before the split
    for row in double.rows(DATABASE_ID, ROLLUPS_TABLE):
        if row["kind"] != "_meta":
            tables_db.update_row(DATABASE_ID, ROLLUPS_TABLE, row["$id"], dict.fromkeys(COST_COUNTERS, 0))
    double.inject(Fault(method="PATCH", path=COMMIT, kind=kind, delay=0.2))
    assert appwrite_migrations.split_old_costs(store) > 0
    assert verify(store).difference_count == 0  # was cost_nano_unsplit twice the cost
    assert appwrite_migrations.split_old_costs(store) == 0


# -- 6. re-key ------------------------------------------------------------------------------------------------------
def stored_before_tenants_scoped_the_key(double: TablesDBDouble, store: AppwriteUsageStore, log: Any) -> str:
    """``log`` as an event stored before tenants scoped the key: its row id from the bare request id."""
    store.record([log])
    tables_db = tables_db_for(double)
    old_id = log_id_for(log.request_id)
    tables_db.create_row(DATABASE_ID, EVENTS_TABLE, old_id, {**event_data(log), "log_id": old_id})
    tables_db.delete_row(DATABASE_ID, EVENTS_TABLE, log.log_id)
    return old_id


@pytest.mark.parametrize("price_rule", ["book", None])
def test_a_rekey_meeting_a_stored_replay_drops_the_old_copy_and_its_counts(
    double: TablesDBDouble, price_rule: str | None
) -> None:
    store = fast_store(double)
    log = make_log(request_id="old-req", tenant_id="studio", model="ollama/llama3", price_model_id="ollama/llama3",
                   price_rule="free_local", cost_nano=0)  # fmt: skip
    old_id = stored_before_tenants_scoped_the_key(double, store, log)
    if price_rule is None:  # stored before rows kept their rule too: its free request never counted
        tables_db_for(double).update_row(DATABASE_ID, EVENTS_TABLE, old_id, {"price_rule": None})
        for row in double.rows(DATABASE_ID, ROLLUPS_TABLE):
            if row["kind"] != "_meta":
                tables_db_for(double).update_row(DATABASE_ID, ROLLUPS_TABLE, row["$id"], {"free_requests": 0})
    assert store.record([log]) == [True]  # the replay, before setup: stored under the tenant-scoped id
    assert appwrite_migrations.rekey_tenant_events(store) == 1
    assert [row["$id"] for row in double.rows(DATABASE_ID, EVENTS_TABLE)] == [log.log_id]  # was two rows
    assert verify(store).difference_count == 0
    assert appwrite_migrations.rekey_tenant_events(store) == 0


def test_a_rekey_still_moves_an_event_with_no_replay(double: TablesDBDouble) -> None:
    store = fast_store(double)
    log = make_log(request_id="old-req", tenant_id="studio")
    stored_before_tenants_scoped_the_key(double, store, log)
    double.inject(Fault(method="PATCH", path=COMMIT, kind="lost_answer"))
    assert appwrite_migrations.rekey_tenant_events(store) == 1
    assert [row["$id"] for row in double.rows(DATABASE_ID, EVENTS_TABLE)] == [log.log_id]
    assert verify(store).difference_count == 0


# -- 7. top players tied on cost -----------------------------------------------------------------------------------
def test_top_players_tied_on_cost_are_the_ones_sqlite_answers(double: TablesDBDouble, tmp_path: Path) -> None:
    costs = {"B": 100, "a": 100, "b": 100, "Z": 100, "y": 50, "A": 50, "c": 0, "C": 0, "é": 0, "E": 0, "top": 900}
    logs = [
        make_log(request_id=f"r-{tenant}-{user}", tenant_id=tenant, user_id=user, cost_nano=cost)
        for tenant in (None, "t")
        for user, cost in costs.items()
    ]
    sqlite = SQLiteUsageStore(tmp_path / "usage.db")
    sqlite.record(logs)
    appwrite = fast_store(double)
    appwrite.record(logs)
    for scope in (None, "", "t", "T"):
        for limit in range(1, len(costs) + 3):
            expected = sqlite.top_rollups(RollupKind.PLAYER_DAY, scope, "2026-11-23", limit)
            assert appwrite.top_rollups(RollupKind.PLAYER_DAY, scope, "2026-11-23", limit) == expected, (scope, limit)
    sqlite.close()
