"""Databases, tables, columns and indexes: the catalog and how the API reports it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import params as p
from .columns import ROW_OVERHEAD, ROW_WIDTH_MAX, Column, column_model, width
from .errors import AppwriteError, argument_invalid, not_implemented
from .rowset import RowSet
from .unique import unique_tuple
from .values import KEY_RULE, Clock, is_key

MAX_COLUMNS = 1010  # appwrite-facts §3.4: 1017 attributes including 7 internal.
MAX_INDEXES = 58  # appwrite-facts §3.4: 64 indexes minus 6 internal.
SYSTEM_ATTRIBUTES = ("$id", "$sequence", "$createdAt", "$updatedAt")


@dataclass
class Index:
    key: str
    type: str
    columns: list[str]
    orders: list[str]
    lengths: list[Any]
    created_at: str
    ready_at: float
    failed: str = ""

    def available(self, now: float) -> bool:
        return not self.failed and now >= self.ready_at

    def model(self, now: float) -> dict[str, Any]:
        status = "failed" if self.failed else ("available" if self.available(now) else "processing")
        return {
            "$id": self.key,
            "$createdAt": self.created_at,
            "$updatedAt": self.created_at,
            "key": self.key,
            "description": "",
            "type": self.type,
            "status": status,
            "error": self.failed,
            "columns": list(self.columns),
            "lengths": list(self.lengths),
            "orders": list(self.orders),
        }


@dataclass
class Table:
    id: str
    database_id: str
    name: str
    created_at: str
    permissions: list[str]
    row_security: bool
    enabled: bool
    rows: RowSet
    columns: dict[str, Column] = field(default_factory=dict)
    indexes: dict[str, Index] = field(default_factory=dict)

    def visible_columns(self, now: float) -> list[Column]:
        return [c for c in self.columns.values() if c.available(now)]

    def model(self, now: float, *, with_schema: bool = True) -> dict[str, Any]:
        used = ROW_OVERHEAD + sum(width(c) for c in self.columns.values())
        return {
            "$id": self.id,
            "$createdAt": self.created_at,
            "$updatedAt": self.created_at,
            "$permissions": list(self.permissions),
            "databaseId": self.database_id,
            "name": self.name,
            "description": "",
            "enabled": self.enabled,
            "rowSecurity": self.row_security,
            "columns": [column_model(c, now) for c in self.columns.values()] if with_schema else [],
            "indexes": [i.model(now) for i in self.indexes.values()] if with_schema else [],
            "bytesMax": ROW_WIDTH_MAX,
            "bytesUsed": used,
        }


@dataclass
class Database:
    id: str
    name: str
    enabled: bool
    created_at: str
    tables: dict[str, Table] = field(default_factory=dict)

    def model(self) -> dict[str, Any]:
        return {
            "$id": self.id,
            "name": self.name,
            "description": "",
            "$createdAt": self.created_at,
            "$updatedAt": self.created_at,
            "enabled": self.enabled,
            "type": "tablesdb",
        }


class Catalog:
    def __init__(self, clock: Clock, case_insensitive: bool, column_ready_after: float) -> None:
        self.clock = clock
        self.case_insensitive = case_insensitive
        self.column_ready_after = column_ready_after
        self.databases: dict[str, Database] = {}

    def database(self, database_id: str) -> Database:
        db = self.databases.get(database_id)
        if db is None:  # appwrite-facts §2.2: database missing → 404 database_not_found
            raise AppwriteError("database_not_found", "Database not found")
        return db

    def table(self, database_id: str, table_id: str) -> Table:
        table = self.database(database_id).tables.get(table_id)
        if table is None:  # appwrite-facts §2.2: table missing → 404 table_not_found
            raise AppwriteError("table_not_found", "Table with the requested ID could not be found.")
        return table

    def add_database(self, db: Database) -> None:
        if db.id in self.databases:  # (inferred) ids are unique per project, like row ids
            raise AppwriteError("database_already_exists", "Database already exists")
        self.databases[db.id] = db

    def add_table(self, db: Database, table: Table) -> None:
        if table.id in db.tables:  # (inferred) ids are unique per database, like row ids
            raise AppwriteError("table_already_exists", "Table with the requested ID already exists.")
        db.tables[table.id] = table

    def add_column(self, table: Table, col: Column) -> None:
        if col.key in table.columns:
            # appwrite-facts §2.2: duplicate column key → 409 column_already_exists.
            raise AppwriteError("column_already_exists", "Column with the requested key already exists.")
        if len(table.columns) >= MAX_COLUMNS:  # appwrite-facts §2.2/§3.4: too many columns
            raise AppwriteError("column_limit_exceeded", "The maximum number of columns has been reached.")
        used = ROW_OVERHEAD + sum(width(c) for c in table.columns.values()) + width(col)
        if used >= ROW_WIDTH_MAX:
            # appwrite-facts §3.4: row width must stay under 65,535 bytes (a varchar(16381) never fits).
            raise AppwriteError(
                "column_limit_exceeded",
                f"Row width limit reached. Cannot create new column: {used} of {ROW_WIDTH_MAX} bytes",
            )
        table.columns[col.key] = col

    def drop_column(self, table: Table, key: str) -> None:
        table.columns.pop(key)
        table.indexes = {k: i for k, i in table.indexes.items() if key not in i.columns}
        for row in table.rows.all():
            table.rows.put({k: v for k, v in row.items() if k != key})

    def build_index(self, table: Table, spec: dict[str, Any], *, inline: bool, ready_at: float) -> Index:
        """Validate an index definition; inline definitions name their columns `attributes`."""
        param = "indexes" if inline else None

        def bad(name: str, rule: str) -> AppwriteError:
            return argument_invalid(param or name, rule if param is None else f"{name}: {rule}")

        key = p.get_str(spec, "key")
        if not is_key(key):
            raise bad("key", KEY_RULE)
        kind = p.get_str(spec, "type")
        if kind == "spatial":
            raise not_implemented("spatial indexes")
        if kind not in ("key", "unique", "fulltext"):
            raise bad("type", "Value must be one of (key, fulltext, unique, spatial)")
        if inline and "columns" in spec and "attributes" not in spec:
            # appwrite-facts §1.1: inline index objects use `attributes`; `columns` is not accepted.
            raise bad("attributes", 'Param "attributes" is not optional; inline indexes use `attributes`')
        columns = p.get_list(spec, "attributes" if inline else "columns")
        if not columns or any(not isinstance(c, str) for c in columns):
            raise bad("columns", "Value must be a non-empty array of column keys")
        now = self.clock.time()
        for name in columns:
            col = table.columns.get(name)
            if col is None and name not in SYSTEM_ATTRIBUTES:
                raise AppwriteError("column_unknown", f"Unknown column: {name}")  # (inferred type)
            if col is not None and not col.available(now):
                # appwrite-facts §1.1: every indexed column must already be `available`.
                raise AppwriteError("column_not_available", f"Column not available: {name}")
            if col is not None and col.array:
                # appwrite-facts §1.1: array columns cannot be indexed.
                raise AppwriteError("index_invalid", f"Cannot index array column: {name}")
        orders = [str(o).upper() for o in p.get_list(spec, "orders", [])]
        if len(orders) > len(columns) or any(o not in ("ASC", "DESC") for o in orders):
            raise bad("orders", "Value must be an array of ASC or DESC, one per column at most")
        lengths = p.get_list(spec, "lengths", [])
        return Index(key, kind, list(columns), orders, lengths, self.clock.now_iso(), ready_at)

    def add_index(self, table: Table, index: Index) -> None:
        if index.key in table.indexes:
            # appwrite-facts §2.2: duplicate index key → 409 column_index_already_exists.
            raise AppwriteError("column_index_already_exists", "Index with the requested key already exists.")
        if len(table.indexes) >= MAX_INDEXES:  # appwrite-facts §2.2/§3.4: 58 user indexes at most
            raise AppwriteError("column_index_limit_exceeded", "The maximum number of indexes has been reached.")
        if index.type == "unique" and _has_duplicates(table, index):
            index.failed = "Duplicate entry: existing rows violate the unique index"  # (inferred)
        table.indexes[index.key] = index


def _has_duplicates(table: Table, index: Index) -> bool:
    seen: set[tuple[Any, ...]] = set()
    for row in table.rows.all():
        value = unique_tuple(row, index, table.rows.case_insensitive)
        if value is not None:
            if value in seen:
                return True
            seen.add(value)
    return False
