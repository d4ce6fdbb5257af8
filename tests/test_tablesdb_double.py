"""The strict TablesDB double, driven only through the real appwrite SDK (TablesDB service).

Each test names the Appwrite rule it checks (see /work/shared/appwrite-facts.md).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from appwrite.client import Client
from appwrite.exception import AppwriteException
from appwrite.id import ID
from appwrite.operator import Operator
from appwrite.query import Query
from appwrite.services.tables_db import TablesDB

from tests.tablesdb_double import Fault, TablesDBDouble
from tests.tablesdb_double.fixtures import appwrite_client, tablesdb_double  # noqa: F401

DB, T = "main", "events"
COLUMNS: list[dict[str, Any]] = [
    {"key": "kind", "type": "varchar", "size": 16, "required": True},
    {"key": "name", "type": "varchar", "size": 8, "required": False},
    {"key": "n", "type": "integer", "required": False, "default": 0},
    {"key": "big", "type": "bigint", "required": False},
    {"key": "score", "type": "double", "required": False},
    {"key": "ok", "type": "boolean", "required": False},
    {"key": "at", "type": "datetime", "required": False},
    {"key": "body", "type": "text", "required": False},
    {"key": "status", "type": "enum", "elements": ["new", "done"], "required": False},
]


@pytest.fixture
def tdb(appwrite_client: Client) -> TablesDB:  # noqa: F811
    service = TablesDB(appwrite_client)
    service.create(DB, "Main")
    service.create_table(DB, T, "Events", columns=COLUMNS)
    return service


def fails(call: Any, *args: Any, **kwargs: Any) -> AppwriteException:
    with pytest.raises(AppwriteException) as info:
        call(*args, **kwargs)
    return info.value


def add(tdb: TablesDB, count: int) -> None:
    """Rows r00000.. with n = their index, 100 per create_rows call (the bulk cap)."""
    for first in range(0, count, 100):
        batch = range(first, min(first + 100, count))
        tdb.create_rows(DB, T, [{"$id": f"r{i:05d}", "kind": "k", "n": i} for i in batch])


# --- schema -------------------------------------------------------------------------------------


def test_inline_columns_are_available_but_the_create_answer_lists_none(appwrite_client: Client) -> None:  # noqa: F811
    service = TablesDB(appwrite_client)
    service.create(DB, "Main")
    created = service.create_table(
        DB, T, "Events", columns=COLUMNS[:2], indexes=[{"key": "by_kind", "type": "key", "attributes": ["kind"]}]
    )
    assert created.columns == [] and created.indexes == [] and created.rowsecurity is False
    table = service.get_table(DB, T)
    assert [c.status.value for c in table.columns] == ["available", "available"]
    assert table.indexes[0].status == "available"


def test_column_made_alone_is_processing_until_ready(tdb: TablesDB) -> None:
    created = tdb.create_varchar_column(DB, T, "late", size=10, required=False)
    assert created.status.value == "processing"
    assert fails(tdb.create_row, DB, T, "a", {"kind": "k", "late": "x"}).type == "row_invalid_structure"
    assert fails(tdb.create_index, DB, T, "by_late", "key", ["late"]).type == "column_not_available"
    time.sleep(0.06)
    assert tdb.get_column(DB, T, "late").status.value == "available"
    assert tdb.create_row(DB, T, "a", {"kind": "k", "late": "x"}).data["late"] == "x"
    assert tdb.create_index(DB, T, "by_late", "key", ["late"]).status == "processing"
    assert fails(tdb.create_index, DB, T, "by_late", "key", ["late"]).type == "column_index_already_exists"
    assert fails(tdb.create_varchar_column, DB, T, "late", size=5, required=False).type == "column_already_exists"


def test_array_and_enum_columns(tdb: TablesDB) -> None:
    tdb.create_enum_column(DB, T, "tier", ["free", "paid"], required=False, default="free")
    tdb.create_integer_column(DB, T, "tags", required=False, array=True)
    time.sleep(0.06)
    assert tdb.get_column(DB, T, "tier").format == "enum"
    assert tdb.create_row(DB, T, "a", {"kind": "k", "tags": [1, 2]}).data["tier"] == "free"
    assert fails(tdb.create_row, DB, T, "b", {"kind": "k", "tags": 1}).type == "row_invalid_structure"
    assert fails(tdb.create_row, DB, T, "b", {"kind": "k", "tags": [1.5]}).type == "row_invalid_structure"
    assert fails(tdb.create_row, DB, T, "b", {"kind": "k", "tier": "Paid"}).type == "row_invalid_structure"
    assert [r.id for r in tdb.list_rows(DB, T, [Query.contains("tags", 2)]).rows] == ["a"]
    assert fails(tdb.list_rows, DB, T, [Query.equal("tags", 2)]).type == "general_query_invalid"
    assert fails(tdb.create_index, DB, T, "by_tags", "key", ["tags"]).type == "index_invalid"
    error = fails(tdb.create_enum_column, DB, T, "bad", ["a"], required=True, default="a")
    assert error.type == "column_default_unsupported"


def test_integer_width_follows_the_endpoint_and_inline_size(tdb: TablesDB) -> None:
    tdb.create_integer_column(DB, T, "wide", required=False)
    tdb.create_integer_column(DB, T, "narrow", required=False, max=2_147_483_647)
    time.sleep(0.06)
    assert tdb.create_row(DB, T, "a", {"kind": "k", "wide": 2**40}).data["wide"] == 2**40
    assert fails(tdb.create_row, DB, T, "b", {"kind": "k", "narrow": 2**31}).type == "row_invalid_structure"
    # an inline integer without size is a 32-bit INT; bigint is 64-bit
    assert fails(tdb.create_row, DB, T, "c", {"kind": "k", "n": 2**31}).type == "row_invalid_structure"
    assert tdb.create_row(DB, T, "d", {"kind": "k", "big": 2**62}).data["big"] == 2**62


def test_schema_limits_and_inline_index_shape(tdb: TablesDB) -> None:
    assert fails(tdb.create_varchar_column, DB, T, "huge", size=16381, required=False).type == "column_limit_exceeded"
    bad_index = [{"key": "i", "type": "key", "columns": ["kind"]}]
    error = fails(tdb.create_table, DB, "t2", "T2", columns=COLUMNS[:1], indexes=bad_index)
    assert error.type == "general_argument_invalid"
    error = fails(
        tdb.create_table,
        DB,
        "t3",
        "T3",
        columns=[{"key": "x", "type": "varchar", "size": 4, "required": True, "default": "a"}],
    )
    assert error.type == "general_argument_invalid"
    assert fails(tdb.get, "nope").type == "database_not_found"
    assert fails(tdb.get_table, DB, "nope").type == "table_not_found"
    assert fails(tdb.get_column, DB, T, "nope").type == "column_not_found"


# --- row validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"kind": "k", "bogus": 1}, 'Unknown attribute: "bogus"'),
        ({"name": "x"}, 'Missing required attribute "kind"'),
        ({"kind": None}, 'Missing required attribute "kind"'),
        ({"kind": "k", "n": 5.0}, "integer"),
        ({"kind": "k", "n": True}, "integer"),
        ({"kind": "k", "score": "1.5"}, "float"),
        ({"kind": "k", "ok": 1}, "boolean"),
        ({"kind": "k", "name": "ééééééééé"}, "no longer than 8 chars"),
        ({"kind": "k", "body": "é" * 32768}, "65535 bytes"),
        ({"kind": "k", "status": "New"}, "one of"),
        ({"kind": "k", "at": "0999-12-31T00:00:00Z"}, "valid date"),
        ({"kind": "k", "at": "yesterday"}, "valid date"),
        ({"kind": "k", "$foo": 1}, 'Unknown attribute: "$foo"'),
    ],
)
def test_row_structure_is_checked(tdb: TablesDB, data: dict[str, Any], fragment: str) -> None:
    error = fails(tdb.create_row, DB, T, "a", data)
    assert (error.code, error.type) == (400, "row_invalid_structure")
    assert error.message.startswith("Invalid document structure: ") and fragment in error.message


def test_varchar_counts_characters_and_text_counts_bytes(tdb: TablesDB) -> None:
    row = tdb.create_row(DB, T, "a", {"kind": "k", "name": "éééééééé", "body": "é" * 32767})
    assert row.data["name"] == "éééééééé"


def test_row_wire_format(tdb: TablesDB) -> None:
    row = tdb.create_row(
        DB, T, "a", {"kind": "k", "at": "2024-01-01T10:00:00.123456+02:00", "$sequence": "99", "$tableId": "x"}
    )
    assert row.sequence == "1" and row.tableid == T and row.databaseid == DB and row.permissions == []
    assert row.data == {
        "kind": "k",
        "name": None,
        "n": 0,
        "big": None,
        "score": None,
        "ok": None,
        "at": "2024-01-01T08:00:00.123+00:00",
        "body": None,
        "status": None,
    }
    naive = tdb.create_row(DB, T, "b", {"kind": "k", "at": "2024-01-01 10:00:00"})
    assert naive.data["at"] == "2024-01-01T10:00:00.000+00:00"
    assert row.createdat.endswith("+00:00") and len(row.createdat) == 29
    custom = tdb.create_row(DB, T, "c", {"kind": "k", "$createdAt": "2020-01-01T00:00:00Z"})
    assert custom.createdat == "2020-01-01T00:00:00.000+00:00"
    assert tdb.get_row(DB, T, "a", queries=[Query.select(["kind"])]).data == {"kind": "k"}
    assert fails(tdb.get_row, DB, T, "a", queries=[Query.equal("kind", "k")]).type == "general_query_invalid"


def test_row_ids_are_validated_unique_and_case_insensitive(tdb: TablesDB) -> None:
    for bad in ("x" * 37, "_lead", "sp ace", "-x"):
        assert fails(tdb.create_row, DB, T, bad, {"kind": "k"}).type == "general_argument_invalid"
    assert len(tdb.create_row(DB, T, ID.unique(), {"kind": "k"}).id) == 20
    assert len(tdb.create_row(DB, T, "unique()", {"kind": "k"}).id) == 20
    tdb.create_row(DB, T, "abc", {"kind": "k"})
    error = fails(tdb.create_row, DB, T, "ABC", {"kind": "k"})
    assert (error.code, error.type) == (409, "row_already_exists")
    assert tdb.get_row(DB, T, "ABC").id == "abc"


def test_case_sensitive_ids_when_configured() -> None:
    with TablesDBDouble(case_insensitive_ids=False) as double:
        client = Client().set_endpoint(double.endpoint).set_project("test-project").set_key("test-key")
        service = TablesDB(client)
        service.create(DB, "Main")
        service.create_table(DB, T, "Events", columns=COLUMNS[:1])
        service.create_row(DB, T, "abc", {"kind": "k"})
        service.create_row(DB, T, "ABC", {"kind": "K"})
        assert service.list_rows(DB, T, [Query.equal("kind", "k")]).total == 1


def test_unique_index_is_enforced_on_every_write(tdb: TablesDB) -> None:
    tdb.create_index(DB, T, "u_name", "unique", ["name"])
    time.sleep(0.06)
    tdb.create_row(DB, T, "a", {"kind": "k", "name": "x"})
    tdb.create_row(DB, T, "b", {"kind": "k", "name": "y"})
    tdb.create_row(DB, T, "c", {"kind": "k"})
    tdb.create_row(DB, T, "d", {"kind": "k"})  # NULLs never collide
    assert fails(tdb.create_row, DB, T, "e", {"kind": "k", "name": "X"}).type == "row_unique_constraint_violation"
    assert fails(tdb.update_row, DB, T, "b", {"name": "x"}).type == "row_unique_constraint_violation"
    assert fails(tdb.upsert_row, DB, T, "f", {"kind": "k", "name": "x"}).code == 409
    tdb.update_row(DB, T, "a", {"name": "x"})  # a row does not collide with itself
    # appwrite-facts §8: the violation inside update_rows is not caught by the route: 500
    error = fails(tdb.update_rows, DB, T, {"name": "z"}, [Query.is_not_null("name")])
    assert (error.code, error.type) == (500, "general_unknown")
    assert tdb.get_row(DB, T, "a").data["name"] == "x"


def test_update_and_upsert_semantics(tdb: TablesDB, tablesdb_double: TablesDBDouble) -> None:  # noqa: F811
    assert fails(tdb.create_row, DB, T, "a", {}).type == "row_missing_data"
    first = tdb.create_row(DB, T, "a", {"kind": "k", "name": "x"})
    assert fails(tdb.update_row, DB, T, "a").type == "row_missing_payload"
    assert fails(tdb.update_row, DB, T, "zz", {"n": 1}).type == "row_not_found"
    tablesdb_double.advance_clock(5)
    same = tdb.update_row(DB, T, "a", {"name": "x"})
    assert same.updatedat == first.updatedat  # an update where nothing changed is skipped
    changed = tdb.update_row(DB, T, "a", {"n": 3})
    assert changed.updatedat > first.updatedat and changed.data["name"] == "x"
    # upsert: required columns must be present; optional ones keep their value
    assert fails(tdb.upsert_row, DB, T, "a", {"n": 4}).type == "row_invalid_structure"
    assert tdb.upsert_row(DB, T, "a", {"kind": "k2"}).data == {**changed.data, "kind": "k2"}
    assert tdb.upsert_row(DB, T, "new", {"kind": "k"}).data["n"] == 0  # created with the default
    tdb.update_row(DB, T, "new", permissions=['read("any")'])
    assert tdb.get_row(DB, T, "new").permissions == ['read("any")']
    assert tdb.delete_row(DB, T, "new") == b""  # 204 with a text/plain content type
    assert fails(tdb.delete_row, DB, T, "new").type == "row_not_found"


# --- bulk ---------------------------------------------------------------------------------------


def test_create_rows_is_capped_and_all_or_nothing(tdb: TablesDB, appwrite_client: Client) -> None:  # noqa: F811
    rows = [{"$id": f"r{i}", "kind": "k"} for i in range(101)]
    assert fails(tdb.create_rows, DB, T, rows).type == "general_argument_invalid"
    assert fails(tdb.create_rows, DB, T, [*rows[:5], {"$id": "bad", "kind": 1}]).type == "row_invalid_structure"
    assert fails(tdb.create_rows, DB, T, [rows[0], rows[0]]).type == "row_already_exists"
    assert tdb.list_rows(DB, T).total == 0
    created = tdb.create_rows(DB, T, [{"kind": "k"}, {"$id": "given", "kind": "k", "$permissions": []}])
    assert created.total == 2 and created.rows[1].id == "given" and len(created.rows[0].id) == 20
    path = f"/tablesdb/{DB}/tables/{T}/rows"
    headers = {"content-type": "application/json", "X-Appwrite-Project": "test-project"}
    for body in ({"rows": rows[:1], "data": {"kind": "k"}}, {"rows": rows[:1], "rowId": "x"}):
        with pytest.raises(AppwriteException) as info:
            appwrite_client.call("post", path, headers, body)
        assert info.value.type == "general_bad_request"


def test_bulk_update_upsert_and_delete_reach_every_matching_row(tdb: TablesDB) -> None:
    add(tdb, 130)
    updated = tdb.update_rows(DB, T, {"name": "bulk"}, [Query.greater_than_equal("n", 10)])
    assert updated.total == 120 and len(updated.rows) == 100
    assert tdb.list_rows(DB, T, [Query.equal("name", "bulk")]).total == 120
    upserted = tdb.upsert_rows(DB, T, [{"$id": "r00000", "kind": "up"}, {"kind": "fresh"}])
    assert upserted.total == 2 and upserted.rows[0].data["kind"] == "up" and upserted.rows[0].data["n"] == 0
    assert upserted.rows[1].data["n"] == 0 and len(upserted.rows[1].id) == 20  # created: default, random id
    deleted = tdb.delete_rows(DB, T, [Query.less_than("n", 5)])
    assert deleted.total == 6
    assert tdb.delete_rows(DB, T).total == 125  # no queries: every row
    assert tdb.list_rows(DB, T).total == 0


# --- queries ------------------------------------------------------------------------------------


def test_default_limit_and_cursor_pagination(tdb: TablesDB) -> None:
    add(tdb, 60)
    first = tdb.list_rows(DB, T)
    assert first.total == 60 and len(first.rows) == 25
    seen, cursor = [], None
    while True:
        queries = [Query.limit(25)] + ([Query.cursor_after(cursor)] if cursor else [])
        page = tdb.list_rows(DB, T, queries).rows
        seen += [r.id for r in page]
        if len(page) < 25:
            break
        cursor = page[-1].id
    assert seen == [f"r{i:05d}" for i in range(60)]
    before = tdb.list_rows(DB, T, [Query.cursor_before("r00010"), Query.limit(3)]).rows
    assert [r.id for r in before] == ["r00007", "r00008", "r00009"]
    desc = tdb.list_rows(DB, T, [Query.order_desc("n"), Query.limit(2), Query.offset(1)]).rows
    assert [r.data["n"] for r in desc] == [58, 57]
    assert fails(tdb.list_rows, DB, T, [Query.cursor_after("missing")]).type == "general_cursor_not_found"
    error = fails(tdb.list_rows, DB, T, [Query.order_asc("name"), Query.cursor_after("r00001")])
    assert error.type == "database_query_order_null"


def test_total_is_capped_at_5000(tdb: TablesDB) -> None:
    add(tdb, 5001)
    assert tdb.list_rows(DB, T, [Query.limit(1)]).total == 5000
    assert tdb.list_rows(DB, T, [Query.limit(1)], total=False).total == 0
    last = tdb.list_rows(DB, T, [Query.cursor_after("r04999")])
    assert [r.id for r in last.rows] == ["r05000"]


def test_query_limits_and_validation(tdb: TablesDB) -> None:
    assert fails(tdb.list_rows, DB, T, [Query.limit(1)] * 101).type == "general_argument_invalid"
    assert fails(tdb.list_rows, DB, T, [Query.equal("kind", "x" * 4100)]).type == "general_argument_invalid"
    too_many = fails(tdb.list_rows, DB, T, [Query.equal("n", list(range(501)))])
    assert too_many.type == "general_query_invalid"
    for query, fragment in [
        (Query.limit(0), "limit"),
        (Query.equal("nope", "x"), "Attribute not found in schema: nope"),
        (Query.equal("n", 5.0), "Query value is invalid"),
        (Query.equal("ok", 1), "Query value is invalid"),
        (Query.equal("kind", 3), "Query value is invalid"),
        (Query.search("kind", "x"), "does not implement"),
        (Query.count(), "Invalid query method"),
        (Query.starts_with("n", "1"), "not a string"),
        ('{"method":"equal"', "Invalid query"),
    ]:
        error = fails(tdb.list_rows, DB, T, [query])
        assert (error.code, error.type) == (400, "general_query_invalid") and fragment in error.message, query


def test_filters(tdb: TablesDB) -> None:
    tdb.create_rows(
        DB,
        T,
        [
            {"$id": "a", "kind": "Alpha", "n": 1, "score": 1.5, "ok": True, "at": "2024-01-01T00:00:00Z"},
            {"$id": "b", "kind": "beta", "n": 2, "score": 2, "ok": False, "name": "x"},
            {"$id": "c", "kind": "gamma", "n": 3, "at": "2024-06-01T02:00:00+02:00"},
        ],
    )

    def ids(*queries: str) -> list[str]:
        return [r.id for r in tdb.list_rows(DB, T, list(queries)).rows]

    assert ids(Query.equal("kind", ["alpha", "GAMMA"])) == ["a", "c"]  # IN, case-insensitive
    assert ids(Query.not_equal("n", 2)) == ["a", "c"]
    assert ids(Query.between("n", 1, 2)) == ["a", "b"]
    assert ids(Query.greater_than("score", 1.5)) == ["b"]
    assert ids(Query.is_null("name")) == ["a", "c"] and ids(Query.is_not_null("name")) == ["b"]
    assert ids(Query.starts_with("kind", "AL"), Query.ends_with("kind", "ha")) == ["a"]
    assert ids(Query.contains("kind", "amm")) == ["c"]
    assert ids(Query.or_queries([Query.equal("n", 1), Query.equal("ok", False)])) == ["a", "b"]
    assert ids(Query.and_queries([Query.greater_than("n", 1), Query.less_than("n", 3)])) == ["b"]
    assert ids(Query.equal("at", "2024-06-01T00:00:00Z")) == ["c"]  # values get the UTC conversion
    assert ids(Query.order_asc("at")) == ["b", "a", "c"]  # NULL first ascending
    assert ids(Query.greater_than("$sequence", "1"), Query.order_desc("$id")) == ["c", "b"]


# --- increments and operators -------------------------------------------------------------------


def test_increment_and_decrement_endpoints(tdb: TablesDB, tablesdb_double: TablesDBDouble) -> None:  # noqa: F811
    row = tdb.create_row(DB, T, "a", {"kind": "k", "n": 5})
    tablesdb_double.advance_clock(5)
    answer = tdb.increment_row_column(DB, T, "a", "n")
    assert answer.data["n"] == 6 and answer.updatedat == row.updatedat  # previous $updatedAt
    assert tdb.decrement_row_column(DB, T, "a", "n", value=2, min=0).data["n"] == 4
    error = fails(tdb.increment_row_column, DB, T, "a", "n", value=10, max=10)
    assert (error.type, error.message) == ("column_limit_exceeded", 'tablesDB "n" has reached the maximum value of 10')
    assert fails(tdb.decrement_row_column, DB, T, "a", "n", value=5, min=0).type == "column_limit_exceeded"
    assert tdb.get_row(DB, T, "a").data["n"] == 4  # rejected, not clamped
    assert "greater than 0" in fails(tdb.increment_row_column, DB, T, "a", "n", value=0).message
    missing = fails(tdb.increment_row_column, DB, T, "nope", "n")
    assert (missing.code, missing.type) == (404, "column_not_found") and "'%s'" in missing.message
    assert fails(tdb.increment_row_column, DB, T, "a", "kind").type == "attribute_type_invalid"
    # a NULL column stays NULL though the answer shows the value
    assert tdb.increment_row_column(DB, T, "a", "score", value=1.5).data["score"] == 1.5
    assert tdb.get_row(DB, T, "a").data["score"] is None


def test_operators_in_every_update_path(tdb: TablesDB) -> None:
    tdb.create_row(DB, T, "a", {"kind": "k", "n": 1})
    assert tdb.update_row(DB, T, "a", {"n": Operator.increment(2)}).data["n"] == 3
    assert tdb.upsert_row(DB, T, "a", {"kind": "k", "n": Operator.decrement(1)}).data["n"] == 2
    assert tdb.upsert_row(DB, T, "b", {"kind": "k", "score": Operator.increment(2.5)}).data["score"] == 2.5
    tdb.upsert_rows(DB, T, [{"$id": "a", "kind": "k", "n": Operator.increment(10)}])
    tdb.update_rows(DB, T, {"n": Operator.increment(1)})
    assert [r.data["n"] for r in tdb.list_rows(DB, T).rows] == [13, 1]
    # a max that would be passed leaves the value unchanged, without an error
    assert tdb.update_row(DB, T, "a", {"n": Operator.increment(5, max=15)}).data["n"] == 13
    error = fails(tdb.update_row, DB, T, "a", {"n": Operator.increment(2_147_483_647)})
    assert error.type == "row_invalid_structure"  # integer columns refuse passing 2^31-1 without a max
    assert fails(tdb.update_row, DB, T, "a", {"big": Operator.increment(1)}).type == "row_invalid_structure"
    assert fails(tdb.update_row, DB, T, "a", {"name": Operator.increment(1)}).type == "row_invalid_structure"
    assert "does not implement" in fails(tdb.update_row, DB, T, "a", {"n": Operator.multiply(2)}).message
    assert fails(tdb.update_row, DB, T, "a", {"n": '{"method":"increment","values":["x"]}'}).type == (
        "general_bad_request"
    )


# --- transactions -------------------------------------------------------------------------------


def test_transaction_ttl_and_flags(tdb: TablesDB, tablesdb_double: TablesDBDouble) -> None:  # noqa: F811
    assert fails(tdb.create_transaction, ttl=59).type == "general_argument_invalid"
    assert fails(tdb.create_transaction, ttl=3601).type == "general_argument_invalid"
    tx = tdb.create_transaction()
    assert tx.status == "pending" and tx.operations == 0
    assert fails(tdb.update_transaction, tx.id).type == "general_bad_request"
    assert fails(tdb.update_transaction, tx.id, commit=True, rollback=True).type == "general_bad_request"
    assert tdb.update_transaction(tx.id, rollback=True).status == "failed"
    assert fails(tdb.update_transaction, tx.id, commit=True).type == "transaction_not_ready"
    old = tdb.create_transaction(ttl=60)
    tablesdb_double.advance_clock(61)
    assert fails(tdb.update_transaction, old.id, commit=True).code == 410
    assert fails(tdb.create_row, DB, T, "a", {"kind": "k"}, transaction_id=old.id).type == "transaction_expired"
    # appwrite-facts §8: staged bulk update/upsert/delete skip the expiry check
    assert tdb.update_rows(DB, T, {"n": 1}, transaction_id=old.id).total == 0
    assert tdb.delete_rows(DB, T, transaction_id=old.id).total == 0
    assert fails(tdb.get_transaction, "nope").type == "transaction_not_found"
    assert tdb.list_transactions().total == 2
    tdb.delete_transaction(tx.id)


def test_staged_writes_are_visible_only_inside_the_transaction(tdb: TablesDB) -> None:
    tdb.create_row(DB, T, "base", {"kind": "k", "n": 1})
    tx = tdb.create_transaction().id
    mock = tdb.create_row(DB, T, "a", {"kind": "k"}, transaction_id=tx)
    assert (mock.id, mock.tableid, mock.createdat) == ("a", T, "")
    tdb.update_row(DB, T, "base", {"name": "staged"}, transaction_id=tx)
    tdb.increment_row_column(DB, T, "base", "n", transaction_id=tx)
    assert tdb.create_rows(DB, T, [{"$id": "b", "kind": "k"}], transaction_id=tx).total == 1
    assert tdb.list_rows(DB, T).total == 1
    inside = tdb.list_rows(DB, T, transaction_id=tx)
    assert [r.id for r in inside.rows] == ["base", "a", "b"]
    assert inside.rows[0].data["name"] == "staged" and inside.rows[0].data["n"] == 1  # increments not shown
    assert tdb.get_transaction(tx).operations == 4
    assert fails(tdb.delete_row, DB, T, "ghost", transaction_id=tx).type == "row_not_found"
    assert tdb.update_transaction(tx, commit=True).status == "committed"
    assert [(r["$id"], r["n"]) for r in tdb_rows(tdb)] == [("base", 2), ("a", 0), ("b", 0)]


def tdb_rows(tdb: TablesDB) -> list[dict[str, Any]]:
    return [{"$id": r.id, **r.data} for r in tdb.list_rows(DB, T).rows]


@pytest.mark.parametrize(
    ("bad_operation", "code", "kind"),
    [
        ({"action": "create", "rowId": "first", "data": {"kind": "k"}}, 409, "transaction_conflict"),
        ({"action": "create", "rowId": "c", "data": {"kind": 5}}, 400, "document_invalid_structure"),
        (
            {"action": "increment", "rowId": "first", "data": {"column": "n", "value": 5, "max": 3}},
            400,
            "attribute_limit_exceeded",
        ),
        (
            {"action": "bulkDelete", "data": {"queries": ['{"method":"equal","attribute":"zz","values":[1]}']}},
            400,
            "general_query_invalid",
        ),
    ],
)
def test_commit_is_all_or_nothing(tdb: TablesDB, bad_operation: dict[str, Any], code: int, kind: str) -> None:
    tdb.create_row(DB, T, "first", {"kind": "k"})
    tx = tdb.create_transaction().id
    good = {"action": "create", "databaseId": DB, "tableId": T, "rowId": "second", "data": {"kind": "k"}}
    tdb.create_operations(tx, [good, {"databaseId": DB, "tableId": T, **bad_operation}])
    error = fails(tdb.update_transaction, tx, commit=True)
    assert (error.code, error.type) == (code, kind)
    assert tdb.get_transaction(tx).status == "failed"
    assert [r.id for r in tdb.list_rows(DB, T).rows] == ["first"]


def test_create_operations_rules(tdb: TablesDB) -> None:
    tdb.create_row(DB, T, "a", {"kind": "k", "n": 1})
    tx = tdb.create_transaction().id
    assert fails(tdb.create_operations, tx, []).type == "general_argument_invalid"
    missing = {"action": "update", "databaseId": DB, "tableId": T, "rowId": "ghost", "data": {"n": 1}}
    assert (fails(tdb.create_operations, tx, [missing]).code, "document_not_found") == (404, "document_not_found")
    ops = [
        {"action": "upsert", "databaseId": DB, "tableId": T, "rowId": "ignored", "data": {"kind": "u"}},
        {
            "action": "upsert",
            "databaseId": DB,
            "tableId": T,
            "data": {"$id": "a", "kind": "k", "n": Operator.increment(5)},
        },
        {"action": "bulkCreate", "databaseId": DB, "tableId": T, "data": [{"$id": "b", "kind": "b"}]},
        {"action": "bulkUpsert", "databaseId": DB, "tableId": T, "data": [{"$id": "b", "kind": "b2"}]},
        {
            "action": "bulkUpdate",
            "databaseId": DB,
            "tableId": T,
            "data": {"queries": [Query.equal("kind", "b2")], "data": {"n": Operator.increment(7)}},
        },
        {"action": "decrement", "databaseId": DB, "tableId": T, "rowId": "a", "data": {"column": "n"}},
    ]
    assert tdb.create_operations(tx, ops).operations == 6
    filler = [{"action": "delete", "databaseId": DB, "tableId": T, "rowId": "a"}] * 95
    error = fails(tdb.create_operations, tx, filler)
    assert error.type == "transaction_limit_exceeded"
    assert error.message == "Transaction already has 6 operations, adding 95 would exceed the maximum of 100"
    tdb.update_transaction(tx, commit=True)
    rows = {r["$id"]: r for r in tdb_rows(tdb)}
    assert rows["a"]["n"] == 5 and rows["b"]["n"] == 7 and "ignored" not in rows
    assert [r["kind"] for r in rows.values() if r["$id"] not in ("a", "b")] == ["u"]  # random id


# --- faults and HTTP ----------------------------------------------------------------------------


def test_status_faults_follow_after_and_times(tdb: TablesDB, tablesdb_double: TablesDBDouble) -> None:  # noqa: F811
    tablesdb_double.inject(Fault("GET", r"/rows$", "status_429", times=2, after=1))
    tdb.list_rows(DB, T)
    assert fails(tdb.list_rows, DB, T).code == 429
    assert fails(tdb.list_rows, DB, T).type == "general_rate_limit_exceeded"
    tdb.list_rows(DB, T)
    tablesdb_double.inject(Fault(kind="status_503"))
    tablesdb_double.inject(Fault(kind="status_500"))
    assert fails(tdb.get, DB).code == 503
    assert fails(tdb.get, DB).code == 500
    tablesdb_double.inject(Fault(kind="status_500"))
    tablesdb_double.clear_faults()
    assert tdb.get(DB).id == DB


def test_drop_raises_at_once_and_writes_nothing(tdb: TablesDB, tablesdb_double: TablesDBDouble) -> None:  # noqa: F811
    tablesdb_double.inject(Fault("POST", r"/rows$", "drop"))
    started = time.monotonic()
    error = fails(tdb.create_row, DB, T, "a", {"kind": "k"})
    assert error.code == 0 and error.type is None and time.monotonic() - started < 2
    assert tablesdb_double.rows(DB, T) == []


def test_lost_answer_executes_the_write(tdb: TablesDB, tablesdb_double: TablesDBDouble) -> None:  # noqa: F811
    tablesdb_double.inject(Fault("POST", r"/rows$", "lost_answer"))
    assert fails(tdb.create_row, DB, T, "a", {"kind": "k"}).code == 0
    assert [r["$id"] for r in tablesdb_double.rows(DB, T)] == ["a"]
    assert fails(tdb.create_row, DB, T, "a", {"kind": "k"}).type == "row_already_exists"


def test_slow_and_conflict_faults(tdb: TablesDB, tablesdb_double: TablesDBDouble) -> None:  # noqa: F811
    tablesdb_double.inject(Fault("GET", None, "slow", delay=0.2))
    started = time.monotonic()
    tdb.get(DB)
    assert time.monotonic() - started >= 0.2
    tablesdb_double.inject(Fault(kind="conflict"))
    tx = tdb.create_transaction().id  # a conflict fault touches only commits
    tdb.create_row(DB, T, "a", {"kind": "k"}, transaction_id=tx)
    error = fails(tdb.update_transaction, tx, commit=True)
    assert (error.code, error.type) == (409, "transaction_conflict")
    assert tdb.get_transaction(tx).status == "failed" and tablesdb_double.rows(DB, T) == []


def test_request_counting(tdb: TablesDB, tablesdb_double: TablesDBDouble) -> None:  # noqa: F811
    tablesdb_double.reset_counts()
    tablesdb_double.inject(Fault(kind="status_503"))
    fails(tdb.get, DB)
    tdb.list_rows(DB, T, [Query.limit(1)])
    assert tablesdb_double.request_count == 2
    assert tablesdb_double.requests == [("GET", f"/v1/tablesdb/{DB}"), ("GET", f"/v1/tablesdb/{DB}/tables/{T}/rows")]


def test_auth_routes_and_unexpected_errors(
    tdb: TablesDB,
    tablesdb_double: TablesDBDouble,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint = tablesdb_double.endpoint
    no_key = TablesDB(Client().set_endpoint(endpoint).set_project("test-project"))
    assert fails(no_key.get, DB).type == "general_unauthorized_scope"
    wrong = TablesDB(Client().set_endpoint(endpoint).set_project("test-project").set_key("nope"))
    assert (fails(wrong.get, DB).code, fails(wrong.get, DB).type) == (401, "user_unauthorized")
    other = TablesDB(Client().set_endpoint(endpoint).set_project("other").set_key("test-key"))
    assert fails(other.get, DB).code == 401
    assert fails(tdb.create_query, DB, T, [Query.limit(1)]).type == "general_route_not_found"

    def boom(*_: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(tablesdb_double.engine.catalog, "database", boom)
    error = fails(tdb.get, DB)
    assert (error.code, error.type) == (500, "general_unknown")


def test_concurrent_increments_are_exact(tdb: TablesDB, appwrite_client: Client) -> None:  # noqa: F811
    tdb.create_row(DB, T, "a", {"kind": "k", "n": 0})

    def bump() -> None:
        service = TablesDB(appwrite_client)
        for _ in range(20):
            service.increment_row_column(DB, T, "a", "n")

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tdb.get_row(DB, T, "a").data["n"] == 160
