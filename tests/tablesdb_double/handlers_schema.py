"""Handlers for databases, tables, columns and indexes."""

from __future__ import annotations

import json
from typing import Any

from . import params as p
from .columns import INLINE_TYPES, build_column, column_model
from .engine import Engine, Reply, Request
from .errors import AppwriteError, argument_invalid, query_invalid
from .rowset import RowSet
from .schema import Database, Table
from .values import resolve_id


def simple_page(raw: Any, items: list[Any]) -> list[Any]:
    """Schema and transaction lists accept only limit/offset queries in the double."""
    limit, offset = 25, 0  # appwrite-facts §3.2: default limit 25
    for text in p.get_list({"queries": raw}, "queries", [], max_items=100):
        try:
            query = json.loads(text)
            method, values = query["method"], query.get("values", [])
        except (ValueError, TypeError, KeyError):
            raise query_invalid(str(text)) from None
        if method == "limit" and values and type(values[0]) is int and values[0] >= 1:
            limit = values[0]
        elif method == "offset" and values and type(values[0]) is int and values[0] >= 0:
            offset = values[0]
        else:
            raise AppwriteError(
                "general_query_invalid",
                f"Invalid query: the TablesDB test double lists schema only with limit/offset, not {text}",
            )
    return items[offset : offset + limit]


def create_database(e: Engine, r: Request) -> Reply:
    db_id = resolve_id(p.get_str(r.params, "databaseId"), "databaseId", e.clock)
    name = p.get_str(r.params, "name")
    db = Database(db_id, name, p.get_bool(r.params, "enabled", True), e.clock.now_iso())
    e.catalog.add_database(db)
    return 201, db.model()


def list_databases(e: Engine, r: Request) -> Reply:
    items = list(e.catalog.databases.values())
    return 200, {"total": len(items), "databases": [d.model() for d in simple_page(r.params.get("queries"), items)]}


def get_database(e: Engine, r: Request) -> Reply:
    return 200, e.catalog.database(r.args["db"]).model()


def delete_database(e: Engine, r: Request) -> Reply:
    e.catalog.databases.pop(e.catalog.database(r.args["db"]).id)
    return 204, None


def create_table(e: Engine, r: Request) -> Reply:
    db = e.catalog.database(r.args["db"])
    table_id = resolve_id(p.get_str(r.params, "tableId"), "tableId", e.clock)
    now_iso = e.clock.now_iso()
    table = Table(
        id=table_id,
        database_id=db.id,
        name=p.get_str(r.params, "name"),
        created_at=now_iso,
        permissions=p.get_list(r.params, "permissions", []),
        row_security=p.get_bool(r.params, "rowSecurity", False),  # appwrite-facts §1.1: defaults to false
        enabled=p.get_bool(r.params, "enabled", True),
        rows=RowSet(e.case_insensitive),
    )
    # 1.8.1: TDB/Tables/Create.php @1.8.1 declares no `columns`/`indexes`; the framework reads only
    # declared params, so inline definitions are silently ignored (no columns, no indexes, 201).
    inline = e.version.inline_schema
    for spec in p.get_list(r.params, "columns", []) if inline else []:
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind not in INLINE_TYPES:
            # appwrite-facts §1.1: inline types are a fixed list; relationship columns are rejected.
            raise argument_invalid("columns", f"type: {kind!r} is not a valid inline column type")
        # appwrite-facts §1.1: inline columns are created synchronously and are `available` at once.
        e.catalog.add_column(table, build_column(kind, spec, param="columns", now_iso=now_iso, ready_at=0.0))
    for spec in p.get_list(r.params, "indexes", []) if inline else []:
        if not isinstance(spec, dict):
            raise argument_invalid("indexes", "Each index must be an object")
        e.catalog.add_index(table, e.catalog.build_index(table, spec, inline=True, ready_at=0.0))
    e.catalog.add_table(db, table)
    # appwrite-facts §8: the create_table answer carries empty columns/indexes; read the table again.
    return 201, table.model(e.clock.time(), with_schema=False)


def list_tables(e: Engine, r: Request) -> Reply:
    items = list(e.catalog.database(r.args["db"]).tables.values())
    now = e.clock.time()
    page = simple_page(r.params.get("queries"), items)
    return 200, {"total": len(items), "tables": [t.model(now) for t in page]}


def get_table(e: Engine, r: Request) -> Reply:
    return 200, e.catalog.table(r.args["db"], r.args["table"]).model(e.clock.time())


def delete_table(e: Engine, r: Request) -> Reply:
    table = e.catalog.table(r.args["db"], r.args["table"])
    e.catalog.databases[table.database_id].tables.pop(table.id)
    return 204, None


def create_column(e: Engine, r: Request) -> Reply:
    table = e.catalog.table(r.args["db"], r.args["table"])
    # appwrite-facts §1.1: a column made on its own answers 202 `processing`, `available` later.
    ready_at = e.clock.time() + e.catalog.column_ready_after
    col = build_column(r.args["kind"], r.params, param=None, now_iso=e.clock.now_iso(), ready_at=ready_at)
    e.catalog.add_column(table, col)
    return 202, column_model(col, e.clock.time())


def _column(e: Engine, r: Request) -> Any:
    table = e.catalog.table(r.args["db"], r.args["table"])
    col = table.columns.get(r.args["key"])
    if col is None:  # (inferred) the TablesDB name of attribute_not_found
        raise AppwriteError("column_not_found", "Column with the requested key could not be found.")
    return table, col


def get_column(e: Engine, r: Request) -> Reply:
    return 200, column_model(_column(e, r)[1], e.clock.time())


def list_columns(e: Engine, r: Request) -> Reply:
    table = e.catalog.table(r.args["db"], r.args["table"])
    now, items = e.clock.time(), list(table.columns.values())
    page = simple_page(r.params.get("queries"), items)
    return 200, {"total": len(items), "columns": [column_model(c, now) for c in page]}


def delete_column(e: Engine, r: Request) -> Reply:
    table, col = _column(e, r)
    e.catalog.drop_column(table, col.key)
    return 204, None


def create_index(e: Engine, r: Request) -> Reply:
    table = e.catalog.table(r.args["db"], r.args["table"])
    ready_at = e.clock.time() + e.catalog.column_ready_after
    index = e.catalog.build_index(table, r.params, inline=False, ready_at=ready_at)
    e.catalog.add_index(table, index)
    return 202, index.model(e.clock.time())  # appwrite-facts §1.1: create_index answers 202


def _index(e: Engine, r: Request) -> Any:
    table = e.catalog.table(r.args["db"], r.args["table"])
    index = table.indexes.get(r.args["key"])
    if index is None:  # (inferred) Appwrite's index_not_found
        raise AppwriteError("index_not_found", "Index with the requested key could not be found.")
    return table, index


def get_index(e: Engine, r: Request) -> Reply:
    return 200, _index(e, r)[1].model(e.clock.time())


def list_indexes(e: Engine, r: Request) -> Reply:
    table = e.catalog.table(r.args["db"], r.args["table"])
    now, items = e.clock.time(), list(table.indexes.values())
    page = simple_page(r.params.get("queries"), items)
    return 200, {"total": len(items), "indexes": [i.model(now) for i in page]}


def delete_index(e: Engine, r: Request) -> Reply:
    table, index = _index(e, r)
    table.indexes.pop(index.key)
    return 204, None
