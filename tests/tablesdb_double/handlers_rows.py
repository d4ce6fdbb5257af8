"""Handlers for rows: reads, writes, bulk calls, increments, and their transaction staging."""

from __future__ import annotations

from typing import Any

from . import params as p
from . import queries
from .engine import Engine, Reply, Request
from .errors import AppwriteError, argument_invalid, row_not_found
from .rows import RowWriter, to_wire
from .rowset import RowSet
from .schema import Table
from .transactions import Operation
from .values import resolve_id

BULK_MAX = 100  # appwrite-facts §1.2: at most 100 rows per bulk call (APP_LIMIT_DATABASE_BATCH)
ECHO_MAX = 100  # appwrite-facts §1.2: update_rows echoes at most 100 rows


def _table(e: Engine, r: Request) -> Table:
    return e.catalog.table(r.args["db"], r.args["table"])


def _tx(r: Request) -> str | None:
    return p.get_str(r.params, "transactionId", None)


def _readable(e: Engine, r: Request, table: Table) -> RowSet:
    tx_id = _tx(r)
    return e.transactions.rows_for_read(tx_id, table) if tx_id else table.rows


def _mock(table: Table, row_id: str, data: Any) -> dict[str, Any]:
    # appwrite-facts §1.3: a staged call answers a mock row: ids plus the data sent, no timestamps.
    body = dict(data) if isinstance(data, dict) else {}
    return {**body, "$id": row_id, "$tableId": table.id, "$databaseId": table.database_id}


def _stage(e: Engine, r: Request, table: Table, op: Operation, *, check_expiry: bool = True) -> None:
    op.database_id, op.table_id = table.database_id, table.id
    e.transactions.stage(_tx(r) or "", [op], check_expiry=check_expiry)


def _must_exist(e: Engine, r: Request, table: Table, row_id: str) -> None:
    if _readable(e, r, table).get(row_id) is None:
        raise row_not_found(row_id)  # (inferred) staging through a row route looks the row up first


def list_rows(e: Engine, r: Request) -> Reply:
    table = _table(e, r)
    now = e.clock.time()
    plan = queries.parse(r.params.get("queries"), table, now)
    want_total = p.get_bool(r.params, "total", True)
    if e.version.list_rows_ttl:
        p.get_int(r.params, "ttl", 0, 86_400, 0)  # appwrite-facts §1.2: ttl 0..86400 (no cache in the double)
    # else 1.8.1: TDB/Tables/Rows/XList.php @1.8.1 declares no `ttl`, so it is ignored unread.
    rows = _readable(e, r, table)
    page, count = queries.run(plan, rows.all(), rows.get, rows.case_insensitive)
    columns = table.visible_columns(now)
    # appwrite-facts §3.2: total is capped at 5000; total=false answers 0.
    total = min(count, queries.TOTAL_CAP) if want_total else 0
    return 200, {"total": total, "rows": [to_wire(table, row, columns, plan.select) for row in page]}


def get_row(e: Engine, r: Request) -> Reply:
    table = _table(e, r)
    now = e.clock.time()
    plan = queries.parse(r.params.get("queries"), table, now, select_only=True)
    row = _readable(e, r, table).get(r.args["row"])
    if row is None:
        raise row_not_found(r.args["row"])
    return 200, to_wire(table, row, table.visible_columns(now), plan.select)


def create_rows_or_row(e: Engine, r: Request) -> Reply:
    table = _table(e, r)
    if "rows" in r.params:
        if "data" in r.params:
            # appwrite-facts §1.2: the server rejects a call that sends both data and rows.
            raise AppwriteError("general_bad_request", "You can only send one of the following parameters: data, rows")
        if "rowId" in r.params or "permissions" in r.params:  # appwrite-facts §1.2: not alongside rows
            raise AppwriteError("general_bad_request", "rowId and permissions cannot be sent with rows")
        payloads = p.get_list(r.params, "rows", max_items=BULK_MAX)
        if _tx(r):
            _stage(e, r, table, Operation("bulkCreate", "", "", None, payloads))
            return 201, {"total": len(payloads), "rows": []}
        writer = RowWriter(table, table.rows, e.clock)
        created = writer.create_many(payloads)
        return 201, {"total": len(created), "rows": [writer.wire(row) for row in created]}
    row_id = resolve_id(p.get_str(r.params, "rowId"), "rowId", e.clock)
    data = p.get_dict(r.params, "data")
    permissions = p.get_list(r.params, "permissions", None)
    if _tx(r):
        _stage(e, r, table, Operation("create", "", "", row_id, data, permissions))
        return 201, _mock(table, row_id, data)
    writer = RowWriter(table, table.rows, e.clock)
    return 201, writer.wire(writer.create(row_id, data, permissions))


def upsert_rows(e: Engine, r: Request) -> Reply:
    table = _table(e, r)
    payloads = p.get_list(r.params, "rows", max_items=BULK_MAX)
    if _tx(r):
        # appwrite-facts §8: staged bulk update/upsert/delete skip the expiry check.
        _stage(e, r, table, Operation("bulkUpsert", "", "", None, payloads), check_expiry=False)
        return 200, {"total": len(payloads), "rows": []}
    writer = RowWriter(table, table.rows, e.clock)
    done = writer.upsert_many(payloads)
    return 200, {"total": len(done), "rows": [writer.wire(row) for row in done]}


def update_rows(e: Engine, r: Request) -> Reply:
    table = _table(e, r)
    raw_queries = p.get_list(r.params, "queries", [])
    plan = queries.parse(raw_queries, table, e.clock.time())
    data = p.get_dict(r.params, "data", {})
    if _tx(r):
        op = Operation("bulkUpdate", "", "", None, {"queries": raw_queries, "data": data})
        _stage(e, r, table, op, check_expiry=False)
        return 200, {"total": 0, "rows": []}
    writer = RowWriter(table, table.rows, e.clock)
    try:
        updated = writer.update_many(data, plan)
    except AppwriteError as exc:
        if exc.type == "row_unique_constraint_violation":
            # appwrite-facts §8: a unique violation inside update_rows is not caught: it answers 500.
            raise AppwriteError("general_unknown", "Server Error") from exc
        raise
    return 200, {"total": len(updated), "rows": [writer.wire(row) for row in updated[:ECHO_MAX]]}


def delete_rows(e: Engine, r: Request) -> Reply:
    table = _table(e, r)
    raw_queries = p.get_list(r.params, "queries", [])
    plan = queries.parse(raw_queries, table, e.clock.time())
    if _tx(r):
        _stage(e, r, table, Operation("bulkDelete", "", "", None, {"queries": raw_queries}), check_expiry=False)
        return 200, {"total": 0, "rows": []}
    writer = RowWriter(table, table.rows, e.clock)
    # appwrite-facts §1.2: no queries means every row is deleted.
    deleted = writer.delete_many(plan)
    return 200, {"total": len(deleted), "rows": [writer.wire(row) for row in deleted[:ECHO_MAX]]}


def update_row(e: Engine, r: Request) -> Reply:
    table, row_id = _table(e, r), r.args["row"]
    data = p.get_dict(r.params, "data", None)
    permissions = p.get_list(r.params, "permissions", None)
    if _tx(r):
        _must_exist(e, r, table, row_id)
        _stage(e, r, table, Operation("update", "", "", row_id, data, permissions))
        return 200, _mock(table, row_id, data)
    writer = RowWriter(table, table.rows, e.clock)
    return 200, writer.wire(writer.update(row_id, data, permissions, r.timestamp))


def upsert_row(e: Engine, r: Request) -> Reply:
    table = _table(e, r)
    row_id = resolve_id(r.args["row"], "rowId", e.clock)
    data = p.get_dict(r.params, "data", None)
    permissions = p.get_list(r.params, "permissions", None)
    if _tx(r):
        _stage(e, r, table, Operation("upsert", "", "", row_id, {**(data or {}), "$id": row_id}, permissions))
        return 200, _mock(table, row_id, data)
    writer = RowWriter(table, table.rows, e.clock)
    # appwrite-facts §1.2: the non-transaction upsert path never sets a status, so 200.
    return 200, writer.wire(writer.upsert(row_id, data, permissions))


def delete_row(e: Engine, r: Request) -> Reply:
    table, row_id = _table(e, r), r.args["row"]
    if _tx(r):
        _must_exist(e, r, table, row_id)
        _stage(e, r, table, Operation("delete", "", "", row_id))
        return 204, None
    RowWriter(table, table.rows, e.clock).delete(row_id)
    return 204, None  # appwrite-facts §1.2: 204 with an empty body


def change_column(e: Engine, r: Request) -> Reply:
    """PATCH …/rows/{row}/{column}/increment|decrement (appwrite-facts §1.2)."""
    table, row_id, column = _table(e, r), r.args["row"], r.args["column"]
    sign = 1 if r.args["direction"] == "increment" else -1
    value = p.get_number(r.params, "value", 1)  # value defaults to 1
    if value <= 0:
        # appwrite-facts §1.2: value must be greater than 0.
        raise argument_invalid("value", "Value must be numeric and greater than 0")
    bound = p.get_number(r.params, "max" if sign > 0 else "min", None)
    if _tx(r):
        _must_exist(e, r, table, row_id)
        data = {"column": column, "value": value, **({} if bound is None else {"max" if sign > 0 else "min": bound})}
        _stage(e, r, table, Operation(r.args["direction"], "", "", row_id, data))
        return 200, _mock(table, row_id, {column: value})
    return 200, RowWriter(table, table.rows, e.clock).increment(row_id, column, value, bound, sign)
