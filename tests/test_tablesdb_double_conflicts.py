"""The double's commit conflicts: a staged write refuses a row someone changed after it was staged.

The rule, with the Appwrite and utopia-php/database lines it mirrors, is in tests/tablesdb_double/conflicts.py:
the row's `$updatedAt` is compared, strictly and in milliseconds, with the operation's own staging time;
update, upsert, delete and the bulk update/upsert/delete are checked, create and increment are not, and a
row an earlier operation of the same commit wrote is not checked again. Same in 1.8.1 and 1.9.6.
Everything goes through the real SDK 27 and transactions (SDK 27 cannot parse 1.8.1 rows; they are read
with `TablesDBDouble.rows`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from appwrite.client import Client
from appwrite.exception import AppwriteException
from appwrite.operator import Operator
from appwrite.query import Query
from appwrite.services.tables_db import TablesDB

from tests.tablesdb_double import TablesDBDouble
from tests.tablesdb_double.conflicts import php_equal

DB, T = "main", "rows"
CONFLICT = (409, "transaction_conflict", "The transaction has a conflict. Please resolve the conflict and try again.")


@pytest.fixture(params=["1.9.6", "1.8.1"])
def double(request: pytest.FixtureRequest) -> Iterator[TablesDBDouble]:
    with TablesDBDouble(server_version=request.param, column_ready_after=0) as running:
        yield running


@pytest.fixture
def tdb(double: TablesDBDouble) -> TablesDB:
    client = Client().set_endpoint(double.endpoint).set_project(double.project_id).set_key(double.api_key)
    service = TablesDB(client)
    service.create(DB, "Main")
    service.create_table(DB, T, "Rows")  # 1.8.1 takes no inline columns
    service.create_integer_column(DB, T, "n", required=False, default=0)
    service.create_integer_column(DB, T, "m", required=False)
    write(service, op("bulkCreate", data=[{"$id": "r", "n": 1}, {"$id": "s", "n": 1}]))
    return service


def op(action: str, row_id: str | None = None, data: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"action": action, "databaseId": DB, "tableId": T}
    if row_id is not None:
        body["rowId"] = row_id
    if data is not None:
        body["data"] = data
    return body


def staged(tdb: TablesDB, *operations: dict[str, Any]) -> str:
    tx = tdb.create_transaction().id
    tdb.create_operations(tx, list(operations))
    return tx


def commit(tdb: TablesDB, tx: str) -> str:
    return tdb.update_transaction(tx, commit=True).status


def write(tdb: TablesDB, *operations: dict[str, Any]) -> None:
    """Another writer: its own transaction, committed at once."""
    assert commit(tdb, staged(tdb, *operations)) == "committed"


def refused(tdb: TablesDB, tx: str) -> tuple[int, str | None, str]:
    with pytest.raises(AppwriteException) as info:
        commit(tdb, tx)
    return info.value.code, info.value.type, info.value.message


def rows(double: TablesDBDouble) -> dict[str, dict[str, Any]]:
    return {row["$id"]: {"n": row["n"], "m": row["m"]} for row in double.rows(DB, T)}


def later(double: TablesDBDouble) -> None:
    """Whatever the double does next happens in a later millisecond than what it did last."""
    double.advance_clock(0.005)


def test_two_bulk_upserts_of_one_row_the_second_commit_conflicts_and_applies_nothing(
    tdb: TablesDB, double: TablesDBDouble
) -> None:
    first = staged(tdb, op("bulkUpsert", data=[{"$id": "r", "n": Operator.increment(1)}]))
    second = staged(
        tdb,
        op("bulkCreate", data=[{"$id": "new", "n": 5}]),
        op("bulkUpsert", data=[{"$id": "fresh", "n": 7}, {"$id": "r", "n": Operator.increment(10)}]),
    )
    later(double)
    assert commit(tdb, first) == "committed"
    assert refused(tdb, second) == CONFLICT
    assert tdb.get_transaction(second).status == "failed"
    assert rows(double) == {"r": {"n": 2, "m": None}, "s": {"n": 1, "m": None}}  # nothing of the second
    with pytest.raises(AppwriteException) as again:
        commit(tdb, second)
    assert again.value.type == "transaction_not_ready"
    # Staged afresh after the first commit, the same writes go through (what a retrying client does).
    write(tdb, op("bulkUpsert", data=[{"$id": "fresh", "n": 7}, {"$id": "r", "n": Operator.increment(10)}]))
    assert rows(double)["r"] == {"n": 12, "m": None} and rows(double)["fresh"] == {"n": 7, "m": None}


def test_transactions_on_different_rows_both_commit(tdb: TablesDB, double: TablesDBDouble) -> None:
    first = staged(tdb, op("bulkUpsert", data=[{"$id": "r", "n": Operator.increment(1)}]))
    second = staged(tdb, op("bulkUpsert", data=[{"$id": "s", "n": Operator.increment(10)}, {"$id": "t", "n": 3}]))
    later(double)
    assert commit(tdb, first) == "committed"
    later(double)
    assert commit(tdb, second) == "committed"
    assert rows(double) == {"r": {"n": 2, "m": None}, "s": {"n": 11, "m": None}, "t": {"n": 3, "m": None}}


CHANGE_R = op("bulkUpsert", data=[{"$id": "r", "m": 5}])  # another writer touches row r only


@pytest.mark.parametrize(
    ("operation", "after"),
    [
        (op("update", "r", {"n": 2}), None),
        (op("upsert", "r", {"$id": "r", "n": 2}), None),
        (op("delete", "r"), None),
        (op("bulkUpsert", data=[{"$id": "r", "n": 2}]), None),
        (op("bulkUpdate", data={"queries": [Query.equal("n", [1])], "data": {"n": 2}}), None),
        (op("bulkDelete", data={"queries": [Query.equal("n", [1])]}), None),
        # increment and decrement never look at `$updatedAt`: applied over the other writer's change.
        (op("increment", "r", {"column": "n", "value": 2}), {"n": 3, "m": 5}),
        (op("decrement", "r", {"column": "n"}), {"n": 0, "m": 5}),
    ],
    ids=["update", "upsert", "delete", "bulkUpsert", "bulkUpdate", "bulkDelete", "increment", "decrement"],
)
def test_which_actions_refuse_a_row_changed_after_staging(
    tdb: TablesDB, double: TablesDBDouble, operation: dict[str, Any], after: dict[str, Any] | None
) -> None:
    tx = staged(tdb, op("create", "extra", {"n": 9}), operation)
    later(double)
    write(tdb, CHANGE_R)
    changed = rows(double)
    if after is None:
        assert refused(tdb, tx) == CONFLICT
        assert tdb.get_transaction(tx).status == "failed"
        assert rows(double) == changed  # not even the create staged before it
    else:
        assert commit(tdb, tx) == "committed"
        assert rows(double)["r"] == after and "extra" in rows(double)


@pytest.mark.parametrize(
    ("operation", "row_id"),
    [
        (op("update", "r", {"n": 2}), "r"),
        (op("bulkUpsert", data=[{"$id": "r", "n": 2}]), "r"),
        (op("bulkUpsert", data=[{"$id": "s", "n": 2}]), "s"),  # a row nobody else touched
    ],
    ids=["update", "bulkUpsert", "untouched-row"],
)
def test_a_row_changed_before_staging_does_not_conflict(
    tdb: TablesDB, double: TablesDBDouble, operation: dict[str, Any], row_id: str
) -> None:
    tx = tdb.create_transaction().id  # what counts is when the operation is staged, not the transaction
    later(double)
    write(tdb, CHANGE_R)
    later(double)
    tdb.create_operations(tx, [operation])
    later(double)
    assert commit(tdb, tx) == "committed"
    assert rows(double)[row_id]["n"] == 2


@pytest.mark.parametrize(
    "operation",
    [
        op("create", "fresh", {"n": 1}),
        op("bulkCreate", data=[{"$id": "fresh", "n": 1}]),
        op("upsert", "fresh", {"$id": "fresh", "n": 1}),
        op("bulkUpsert", data=[{"$id": "fresh", "n": 1}]),
    ],
    ids=["create", "bulkCreate", "upsert", "bulkUpsert"],
)
def test_a_row_created_by_another_writer_after_staging_conflicts(
    tdb: TablesDB, double: TablesDBDouble, operation: dict[str, Any]
) -> None:
    tx = staged(tdb, operation)  # "fresh" does not exist yet
    later(double)
    write(tdb, op("bulkUpsert", data=[{"$id": "fresh", "n": 50}]))
    assert refused(tdb, tx) == CONFLICT  # creates: a duplicate id; upserts: `$updatedAt` after staging
    assert rows(double)["fresh"] == {"n": 50, "m": None}


@pytest.mark.parametrize(("gap", "conflicts"), [(0.0005, False), (0.0011, True)], ids=["same-ms", "next-ms"])
def test_the_comparison_is_strict_on_milliseconds(
    tdb: TablesDB, double: TablesDBDouble, monkeypatch: pytest.MonkeyPatch, gap: float, conflicts: bool
) -> None:
    clock = double.engine.clock
    now = [math.floor(clock.time()) + 1.0004]  # a frozen clock, 0.4 ms into a millisecond
    monkeypatch.setattr(clock, "time", lambda: now[0])
    other = staged(tdb, op("bulkUpsert", data=[{"$id": "r", "n": Operator.increment(1)}]))
    mine = staged(tdb, op("bulkUpsert", data=[{"$id": "r", "n": Operator.increment(10)}]))
    now[0] += gap  # the other commit lands in the same millisecond as my staging, or in the next one
    assert commit(tdb, other) == "committed"
    if conflicts:
        assert refused(tdb, mine) == CONFLICT
        assert rows(double)["r"]["n"] == 2
    else:
        assert commit(tdb, mine) == "committed"
        assert rows(double)["r"]["n"] == 12


def test_a_row_an_earlier_operation_of_the_commit_wrote_is_not_checked_again(
    tdb: TablesDB, double: TablesDBDouble
) -> None:
    # The increment is never checked and makes row r part of the commit's state; the update after it
    # is then "dependent" and skips the check that alone would refuse it (see the update case above).
    tx = staged(tdb, op("increment", "r", {"column": "n"}), op("update", "r", {"m": 7}))
    later(double)
    write(tdb, CHANGE_R)
    assert commit(tdb, tx) == "committed"
    assert rows(double)["r"] == {"n": 2, "m": 7}


@pytest.mark.parametrize(
    ("payload", "conflicts"),
    [
        ({"$id": "r", "n": 2, "m": None}, False),  # every column, equal to the row: skipped, so not checked
        ({"$id": "r", "n": 2}, True),  # a column left out counts as a change
        ({"$id": "r", "n": 3, "m": None}, True),
    ],
    ids=["unchanged", "partial", "changed"],
)
def test_a_bulk_upsert_that_changes_nothing_is_not_checked(
    tdb: TablesDB, double: TablesDBDouble, payload: dict[str, Any], conflicts: bool
) -> None:
    tx = staged(tdb, op("bulkUpsert", data=[payload]))
    later(double)
    write(tdb, op("update", "r", {"n": 2}))  # the row now holds what the upsert would write
    if conflicts:
        assert refused(tdb, tx) == CONFLICT
    else:
        assert commit(tdb, tx) == "committed"
    assert rows(double)["r"] == {"n": 2, "m": None}


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (None, None, True),
        (None, 0, True),
        (None, False, True),
        (None, "", True),
        (None, "0", False),
        (True, 2, True),
        (1, 1.0, True),
        ("1", "01", True),
        ("1", 1, True),
        ("abc", 0, False),
        ("abc", "ABC", False),
        ([1, 2], [1.0, 2], True),
        ([1, 2], [2, 1], False),
        (2**53 + 1, 2**53, False),
    ],
)
def test_upsert_change_detection_uses_php_loose_equality(a: Any, b: Any, equal: bool) -> None:
    assert php_equal(a, b) is equal and php_equal(b, a) is equal


# -- X-Appwrite-Timestamp: an update that applies only if the row did not change since (appwrite-facts §2.2) -----
def patch_row(double: TablesDBDouble, data: dict[str, Any], since: str | None) -> tuple[int, Any]:
    client = Client().set_endpoint(double.endpoint).set_project(double.project_id).set_key(double.api_key)
    headers = {"X-Appwrite-Project": double.project_id, "content-type": "application/json"}
    if since is not None:
        headers["X-Appwrite-Timestamp"] = since
    try:
        return 200, client.call("patch", f"/tablesdb/{DB}/tables/{T}/rows/r", headers, {"data": data})
    except AppwriteException as exc:
        return exc.code, (exc.type, exc.message)


def updated_at(double: TablesDBDouble) -> str:
    return next(row["$updatedAt"] for row in double.rows(DB, T) if row["$id"] == "r")


def test_an_update_sent_with_the_rows_updated_at_applies_once_and_a_second_with_it_conflicts(
    tdb: TablesDB, double: TablesDBDouble
) -> None:
    seen = updated_at(double)  # two writers read the row, then both update it "if unchanged"
    later(double)

    assert patch_row(double, {"n": 2}, seen)[0] == 200
    assert patch_row(double, {"n": 3}, seen) == (409, ("row_update_conflict", "Remote row is newer than local."))
    assert rows(double)["r"]["n"] == 2
    assert patch_row(double, {"n": 4}, updated_at(double))[0] == 200  # with the new one: applies
    assert patch_row(double, {"n": 5}, None)[0] == 200  # no header: no condition


def test_a_timestamp_that_does_not_parse_is_refused() -> None:
    with TablesDBDouble(column_ready_after=0) as double:
        status, (kind, message) = patch_row(double, {"n": 2}, "yesterday-ish")
    assert (status, kind, message) == (400, "general_argument_invalid", "Invalid X-Appwrite-Timestamp header value")
