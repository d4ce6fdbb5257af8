"""The Appwrite schema, read from ``appwrite.json`` (the one source of truth), and its idempotent set-up.

``provision`` creates what is missing (database, tables, columns, indexes), waits until every column and
index is ``available``, and reports what differs from the declaration. It never drops or alters anything:
a difference is for a person to resolve.

Only APIs every supported server has are used (Cloud, self-hosted 1.8.1+ and 1.9.x): tables are created
empty and each column and index through its own endpoint, polled until the worker has built it
(appwrite-facts §1.1), because self-hosted 1.8 ignores inline ``columns``/``indexes`` in ``create_table``;
strings are ``string`` columns and 64-bit counters ``integer`` columns without a 32-bit bound, because
``varchar``/``text`` arrived in 1.9.0 and ``bigint`` in 1.9.5.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appwrite.exception import AppwriteException
from appwrite.query import Query
from appwrite.services.tables_db import TablesDB

from services.store.appwrite_client import get_json

INT32_MAX = 2**31 - 1
CONFIG_NAMES = ("appwrite.config.json", "appwrite.json")
REPO_CONFIG = Path(__file__).resolve().parents[2] / "appwrite.json"
_LIST_LIMIT = 5000  # schema lists default to 25 items; a table has at most 1010 columns and 58 indexes


class SchemaError(Exception):
    """The declaration cannot be read or used, or the server refused a schema change."""


@dataclass(frozen=True)
class TableSpec:
    id: str
    name: str
    columns: tuple[dict[str, Any], ...]
    indexes: tuple[dict[str, Any], ...]
    permissions: tuple[str, ...] = ()
    row_security: bool = False
    enabled: bool = True

    def column(self, key: str) -> dict[str, Any]:
        for column in self.columns:
            if column["key"] == key:
                return column
        raise KeyError(key)


@dataclass(frozen=True)
class SchemaSpec:
    database_id: str
    database_name: str
    tables: tuple[TableSpec, ...]

    def table(self, table_id: str) -> TableSpec:
        for table in self.tables:
            if table.id == table_id:
                return table
        raise KeyError(table_id)


@dataclass
class SetupReport:
    created: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)


def find_config(start: Path | None = None) -> Path:
    """``appwrite.config.json`` or ``appwrite.json`` in ``start`` or a parent (as Appwrite's CLI looks), else ours."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        for name in CONFIG_NAMES:
            if (folder / name).is_file():
                return folder / name
    return REPO_CONFIG


def load_schema(path: Path = REPO_CONFIG, database_id: str | None = None) -> SchemaSpec:
    """The database (the one named, or the only one) and its tables as ``appwrite.json`` declares them."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SchemaError(f"cannot read {path}: {exc}") from exc
    databases = doc.get("tablesDB") or []
    if database_id is not None:
        databases = [db for db in databases if db.get("$id") == database_id] or databases[:1]
    if len(databases) != 1:
        raise SchemaError(f"{path} must declare exactly one tablesDB database (found {len(databases)})")
    declared = databases[0]["$id"]
    tables = tuple(
        TableSpec(
            id=table["$id"],
            name=table.get("name", table["$id"]),
            columns=tuple(table.get("columns", [])),
            indexes=tuple(table.get("indexes", [])),
            permissions=tuple(table.get("$permissions", [])),
            row_security=bool(table.get("rowSecurity", False)),
            enabled=bool(table.get("enabled", True)),
        )
        for table in doc.get("tables", [])
        if table.get("databaseId") == declared
    )
    if not tables:
        raise SchemaError(f"{path} declares no tables for database {declared!r}")
    return SchemaSpec(database_id=declared, database_name=databases[0].get("name", declared), tables=tables)


def is_64_bit(column: dict[str, Any]) -> bool:
    lo, hi = column.get("min"), column.get("max")
    return column["type"] == "bigint" or (
        column["type"] == "integer" and (hi is None or hi > INT32_MAX or (lo is not None and lo < -INT32_MAX - 1))
    )


class Provisioner:
    """Brings one database in line with a ``SchemaSpec``; every step is safe to repeat."""

    def __init__(
        self,
        tables_db: TablesDB,
        *,
        wait_seconds: float = 120.0,
        poll_seconds: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = tables_db
        self.wait_seconds = wait_seconds
        self.poll_seconds = poll_seconds
        self.sleep = sleep
        self.clock = clock

    def provision(self, spec: SchemaSpec, database_id: str | None = None) -> SetupReport:
        report = SetupReport()
        database_id = database_id or spec.database_id
        if not self._exists(lambda: self.db.get(database_id)):
            self.db.create(database_id, spec.database_name, enabled=True)
            report.created.append(f"database {database_id}")
        for table in spec.tables:
            self._table(database_id, table, report)
        return report

    def _exists(self, read: Callable[[], object]) -> bool:
        try:
            read()
        except AppwriteException as exc:
            if exc.code == 404:
                return False
            raise
        return True

    def _table(self, database_id: str, table: TableSpec, report: SetupReport) -> None:
        if not self._exists(lambda: self.db.get_table(database_id, table.id)):
            self.db.create_table(
                database_id,
                table.id,
                table.name,
                permissions=list(table.permissions),
                row_security=table.row_security,
                enabled=table.enabled,
            )
            report.created.append(f"table {table.id}")
        where = f"{database_id}/{table.id}"
        columns = self._columns(database_id, table.id)
        for declared in table.columns:
            actual = columns.get(declared["key"])
            if actual is None:
                self._create_column(database_id, table.id, declared)
                report.created.append(f"column {where}.{declared['key']}")
            else:
                report.differences.extend(
                    f"column {where}.{declared['key']}: {d}" for d in column_diff(declared, actual)
                )
        declared_keys = {c["key"] for c in table.columns}
        report.differences.extend(
            f"column {where}.{key}: on the server but not declared (kept)"
            for key in columns
            if key not in declared_keys
        )
        self._wait_available(lambda: self._columns(database_id, table.id), declared_keys, f"columns of {where}")
        indexes = self._indexes(database_id, table.id)
        for declared in table.indexes:
            actual = indexes.get(declared["key"])
            if actual is None:
                self.db.create_index(
                    database_id, table.id, declared["key"], declared["type"], list(declared["columns"]),
                    orders=declared.get("orders"), lengths=declared.get("lengths"),
                )  # fmt: skip
                report.created.append(f"index {where}.{declared['key']}")
            else:
                report.differences.extend(f"index {where}.{declared['key']}: {d}" for d in index_diff(declared, actual))
        declared_keys = {i["key"] for i in table.indexes}
        report.differences.extend(
            f"index {where}.{key}: on the server but not declared (kept)" for key in indexes if key not in declared_keys
        )
        self._wait_available(lambda: self._indexes(database_id, table.id), declared_keys, f"indexes of {where}")

    def _raw_list(self, path: str, field_name: str) -> dict[str, dict[str, Any]]:
        # Raw JSON, not the SDK's models: its column union mis-types columns and turns int64 bounds into floats.
        answer = get_json(self.db.client, path, {"queries": [Query.limit(_LIST_LIMIT)], "total": False})
        return {item["key"]: item for item in answer[field_name]}

    def _columns(self, database_id: str, table_id: str) -> dict[str, dict[str, Any]]:
        return self._raw_list(f"/tablesdb/{database_id}/tables/{table_id}/columns", "columns")

    def _indexes(self, database_id: str, table_id: str) -> dict[str, dict[str, Any]]:
        return self._raw_list(f"/tablesdb/{database_id}/tables/{table_id}/indexes", "indexes")

    def _wait_available(self, read: Callable[[], dict[str, dict[str, Any]]], keys: set[str], what: str) -> None:
        """Wait until the declared ``keys`` are available; undeclared ones are kept and not waited for."""
        deadline = self.clock() + self.wait_seconds
        while True:
            items = {key: item for key, item in read().items() if key in keys}
            broken = {k: v.get("error") or v["status"] for k, v in items.items() if v["status"] in ("failed", "stuck")}
            if broken:
                raise SchemaError(f"{what} failed on the server: {broken}")
            pending = sorted(k for k, v in items.items() if v["status"] != "available")
            if not pending:
                return
            if self.clock() > deadline:
                raise SchemaError(f"{what} not available after {self.wait_seconds:g}s: {pending}")
            self.sleep(self.poll_seconds)

    def _create_column(self, database_id: str, table_id: str, column: dict[str, Any]) -> None:
        kind, key = column["type"], column["key"]
        common = {"required": bool(column.get("required", False)), "array": column.get("array")}
        default = column.get("default")
        if kind == "string":
            # Deprecated since 1.9.0 in favour of varchar/text, which 1.8 lacks; still served by 1.9 and Cloud.
            # The SDK's deprecation wrapper resets the process's warning filters on every call, so it is
            # bypassed rather than silenced.
            create = TablesDB.create_string_column.__wrapped__  # type: ignore[attr-defined]
            create(self.db, database_id, table_id, key, column["size"], default=default, **common)
        elif kind == "varchar":
            self.db.create_varchar_column(database_id, table_id, key, column["size"], default=default, **common)
        elif kind in ("text", "mediumtext", "longtext"):
            create = getattr(self.db, f"create_{kind}_column")
            create(database_id, table_id, key, default=default, **common)
        elif kind in ("integer", "bigint"):
            create = self.db.create_integer_column if kind == "integer" else self.db.create_big_int_column
            create(database_id, table_id, key, min=column.get("min"), max=column.get("max"), default=default, **common)
        elif kind == "double":
            self.db.create_float_column(
                database_id, table_id, key, min=column.get("min"), max=column.get("max"), default=default, **common
            )
        elif kind == "boolean":
            self.db.create_boolean_column(database_id, table_id, key, default=default, **common)
        elif kind == "datetime":
            self.db.create_datetime_column(database_id, table_id, key, default=default, **common)
        else:
            raise SchemaError(f"column {table_id}.{key}: type {kind!r} is not supported by this set-up")


# Bytes a text-family column holds (appwrite-facts §3.4); a character takes at most 4 in utf8mb4.
_TEXT_BYTES = {"text": 65_535, "mediumtext": 16_777_215, "longtext": 4_294_967_295}


def _holds_declared_string(declared: dict[str, Any], actual: dict[str, Any]) -> bool:
    """A 1.9 ``varchar``/``text`` column (this schema's layout before it moved to ``string`` for 1.8) stores
    every value the declared ``string`` column would: the same column as far as set-up is concerned."""
    if declared["type"] != "string":
        return False
    if actual.get("type") == "varchar":
        return True  # same VARCHAR(n); a different size is reported as such
    return actual.get("type") in _TEXT_BYTES and declared["size"] * 4 <= _TEXT_BYTES[actual["type"]]


def column_diff(declared: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """How a column on the server differs from its declaration (empty when it matches)."""
    diffs = []
    kind = declared["type"]
    if actual.get("type") != kind and not _holds_declared_string(declared, actual):
        diffs.append(f"type is {actual.get('type')!r}, declared {kind!r}")
        return diffs
    for name in ("required", "array"):
        if bool(actual.get(name, False)) != bool(declared.get(name, False)):
            diffs.append(f"{name} is {actual.get(name)}, declared {declared.get(name, False)}")
    if actual.get("type") in ("varchar", "string") and actual.get("size") != declared.get("size"):
        diffs.append(f"size is {actual.get('size')}, declared {declared.get('size')}")
    if kind in ("integer", "bigint"):
        if is_64_bit(declared) != (actual.get("max", 0) > INT32_MAX):
            diffs.append(f"is {'64' if actual.get('max', 0) > INT32_MAX else '32'}-bit, declared otherwise")
        for bound in ("min", "max"):
            if declared.get(bound) is not None and actual.get(bound) != declared[bound]:
                diffs.append(f"{bound} is {actual.get(bound)}, declared {declared[bound]}")
    if declared.get("default") is not None and actual.get("default") != declared["default"]:
        diffs.append(f"default is {actual.get('default')!r}, declared {declared['default']!r}")
    return diffs


def index_diff(declared: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    diffs = []
    if actual.get("type") != declared["type"]:
        diffs.append(f"type is {actual.get('type')!r}, declared {declared['type']!r}")
    if list(actual.get("columns", actual.get("attributes", []))) != list(declared["columns"]):
        diffs.append(f"columns are {actual.get('columns')}, declared {declared['columns']}")
    if declared.get("orders") and [o.upper() for o in actual.get("orders", [])] != declared["orders"]:
        diffs.append(f"orders are {actual.get('orders')}, declared {declared['orders']}")
    return diffs
