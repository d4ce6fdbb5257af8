"""Row writes for one table: create, update, upsert, delete (single and bulk) and increments."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from .columns import NUMERIC_TYPES, Column, check_value
from .errors import AppwriteError, argument_invalid, row_not_found, structure_invalid
from .operators import apply_operator, parse_operator
from .queries import Plan, run
from .rowset import Row, RowSet
from .schema import Table
from .unique import UniqueGuard
from .values import KEY_RULE, UNIQUE, Clock, is_key, normalize_datetime, unique_id

# appwrite-facts §3.3: `$sequence`, `$databaseId` and `$tableId` are always stripped from data.
_STRIPPED = frozenset({"$sequence", "$databaseId", "$tableId", "$collection"})
# appwrite-facts §3.3: an API key may set `$createdAt`/`$updatedAt` itself.
_TIMESTAMPS = frozenset({"$createdAt", "$updatedAt"})
_PERMISSION_RE = re.compile(r'(read|create|update|delete|write)\("[^"]+"\)')


def to_wire(table: Table, row: Row, columns: list[Column], select: list[str] | None = None) -> dict[str, Any]:
    """appwrite-facts §1.4: flat row JSON, `$sequence` as a string, unset optional columns as null;
    with `select`, unselected columns are absent but system fields stay [U validateSelections]."""
    out: dict[str, Any] = {
        "$id": row["$id"],
        "$sequence": str(row["$sequence"]),
        "$tableId": table.id,
        "$databaseId": table.database_id,
        "$createdAt": row["$createdAt"],
        "$updatedAt": row["$updatedAt"],
        "$permissions": list(row["$permissions"]),
    }
    for col in columns:
        if select is None or "*" in select or col.key in select:
            value = row.get(col.key)
            out[col.key] = list(value) if isinstance(value, list) else value
    return out


class RowWriter:
    def __init__(self, table: Table, rows: RowSet, clock: Clock) -> None:
        self.table, self.rows, self.clock = table, rows, clock
        self.now_ts = clock.time()
        self.now = clock.now_iso()
        self.visible = table.visible_columns(self.now_ts)
        self.columns = {c.key: c for c in self.visible}
        self._unique = [i for i in table.indexes.values() if i.type == "unique" and i.available(self.now_ts)]
        self._guard: UniqueGuard | None = None

    def guard(self) -> UniqueGuard | None:
        if self._unique and self._guard is None:
            self._guard = UniqueGuard(self._unique, self.rows)
        return self._guard

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Bulk writes are all or nothing (utopia runs each batch in one SQL transaction)."""
        snapshot = self.rows.snapshot()
        try:
            yield
        except BaseException:
            self.rows.restore(snapshot)
            self._guard = None
            raise

    def wire(self, row: Row, select: list[str] | None = None) -> dict[str, Any]:
        return to_wire(self.table, row, self.visible, select)

    def _split(self, data: Any, *, operators: bool) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """Column values, operators and `$` meta keys of a data payload, each value validated."""
        if not isinstance(data, dict):
            raise argument_invalid("data", "Value must be a valid object")
        values: dict[str, Any] = {}
        ops: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        for key, value in data.items():
            if key in _STRIPPED:
                continue
            if key in _TIMESTAMPS:
                if value is not None:
                    meta[key] = normalize_datetime(value)
                    if meta[key] is None:
                        raise structure_invalid(f'Attribute "{key}" has invalid format. Value must be valid date')
                continue
            if key in ("$id", "$permissions"):
                meta[key] = value
                continue
            col = self.columns.get(key)
            if col is None:
                # appwrite-facts §2.2/§7.2: unknown key (or a column still `processing`, §1.1 inferred).
                raise structure_invalid(f'Unknown attribute: "{key}"')
            op = parse_operator(value) if operators else None
            if op is not None:
                ops[key] = op
            else:
                values[key] = None if value is None else check_value(col, value)
        return values, ops, meta

    def _permissions(self, value: Any, fallback: list[str]) -> list[str]:
        if value is None:
            return list(fallback)  # appwrite-facts §1.2: with an API key and no user, a create gets []
        if not isinstance(value, list) or any(
            not isinstance(v, str) or _PERMISSION_RE.fullmatch(v) is None for v in value
        ):
            raise argument_invalid("permissions", 'Permissions must be strings like read("any")')
        return list(value)

    def _require(self, row: Row) -> None:
        for col in self.visible:
            if col.required and row.get(col.key) is None:
                # appwrite-facts §2.2: 'Missing required attribute "x"'; null counts as missing.
                raise structure_invalid(f'Missing required attribute "{col.key}"')

    def _resolve_row_id(self, value: Any) -> str:
        if value is None or value == UNIQUE:
            return unique_id(self.clock)  # appwrite-facts §1.2: a row without `$id` gets a generated one
        if not is_key(value):  # appwrite-facts §3.4: ids ≤36 chars of [A-Za-z0-9._-], no leading _ . -
            raise structure_invalid(f'Attribute "$id" has invalid format. {KEY_RULE}')
        return value

    def _insert(
        self, row_id: str, values: dict[str, Any], ops: dict[str, Any], meta: dict[str, Any], permissions: Any
    ) -> Row:
        row: Row = {
            "$id": row_id,
            "$sequence": 0,
            "$createdAt": meta.get("$createdAt") or self.now,
            "$updatedAt": meta.get("$updatedAt") or self.now,
            "$permissions": self._permissions(permissions, []),
        }
        for col in self.visible:
            # appwrite-facts §1.2: optional columns absent from the payload take their default on create.
            row[col.key] = values.get(col.key, col.default)
        for key, op in ops.items():
            row[key] = apply_operator(self.columns[key], op, None)  # a created row: operator applies to 0
        self._require(row)
        if self.rows.get(row_id) is not None:
            # appwrite-facts §2.2/§7.3: duplicate id (case-insensitive when configured) → 409.
            raise AppwriteError(
                "row_already_exists",
                f"Row with the requested ID '{row_id}' already exists. Try again with a different ID or "
                "use ID.unique() to generate a unique ID.",
            )
        guard = self.guard()
        if guard:
            guard.check(row)
        row["$sequence"] = self.rows.take_sequence()
        self.rows.put(row)
        if guard:
            guard.add(row)
        return row

    def _replace(
        self, old: Row, values: dict[str, Any], ops: dict[str, Any], meta: dict[str, Any], permissions: Any
    ) -> Row:
        new = {**old, **values}
        for key, op in ops.items():
            new[key] = apply_operator(self.columns[key], op, old.get(key))
        new["$permissions"] = self._permissions(permissions, old["$permissions"])
        if meta.get("$createdAt"):
            new["$createdAt"] = meta["$createdAt"]
        changed = any(new.get(k) != old.get(k) for k in new if k != "$updatedAt")
        # appwrite-facts §1.2: an update where nothing changed is skipped (keeps `$updatedAt`).
        new["$updatedAt"] = meta.get("$updatedAt") or (self.now if changed else old["$updatedAt"])
        self._require(new)
        guard = self.guard()
        if guard:
            guard.discard(old)
            try:
                guard.check(new)
            except AppwriteError:
                guard.add(old)
                raise
            guard.add(new)
        self.rows.put(new)
        return new

    def create(self, row_id: str, data: Any, permissions: Any) -> Row:
        if isinstance(data, dict) and not data:  # appwrite-facts §2.2: empty data for a single create
            raise AppwriteError("row_missing_data", "The row data is missing. Try again with row data populated")
        values, _, meta = self._split(data, operators=False)  # operators apply to updates and upserts
        if permissions is None:
            permissions = meta.get("$permissions")
        return self._insert(row_id, values, {}, meta, permissions)

    def create_many(self, payloads: list[Any]) -> list[Row]:
        created = []
        with self.atomic():
            for payload in payloads:
                values, _, meta = self._split(payload, operators=False)
                row_id = self._resolve_row_id(meta.get("$id"))
                created.append(self._insert(row_id, values, {}, meta, meta.get("$permissions")))
        return created

    def update(self, row_id: str, data: Any, permissions: Any, unchanged_since: datetime | None = None) -> Row:
        old = self.rows.get(row_id)
        if old is None:
            raise row_not_found(row_id)
        if not data and permissions is None:
            # appwrite-facts §1.2: empty data with no permissions → 400 row_missing_payload.
            raise AppwriteError("row_missing_payload", "The row data and permissions are missing.")
        if unchanged_since is not None and datetime.fromisoformat(old["$updatedAt"]) > unchanged_since:
            # appwrite-facts §2.2: X-Appwrite-Timestamp older than the row's `$updatedAt` → 409. utopia-php/database
            # Database::updateDocument compares them strictly (`$oldUpdatedAt > $this->timestamp`) on the row it
            # read inside the write's transaction, so of two updates sent with the same timestamp one fails.
            raise AppwriteError("row_update_conflict", "Remote row is newer than local.")
        values, ops, meta = self._split(data or {}, operators=True)
        return self._replace(old, values, ops, meta, permissions)

    def upsert(self, row_id: str, data: Any, permissions: Any) -> Row:
        if not data and permissions is None:  # appwrite-facts §2.2: upsert with no data and no permissions
            raise AppwriteError("row_missing_payload", "The row data and permissions are missing.")
        values, ops, meta = self._split(data or {}, operators=True)
        permissions = permissions if permissions is not None else meta.get("$permissions")
        for col in self.visible:
            if col.required and col.key not in values and col.key not in ops:
                # appwrite-facts §1.2 upsert: required columns must always be present in the payload.
                raise structure_invalid(f'Missing required attribute "{col.key}"')
        old = self.rows.get(row_id)
        if old is None:
            return self._insert(row_id, values, ops, meta, permissions)
        return self._replace(old, values, ops, meta, permissions)

    def upsert_many(self, payloads: list[Any]) -> list[Row]:
        done = []
        with self.atomic():
            for payload in payloads:
                if not isinstance(payload, dict):
                    raise argument_invalid("rows", "Each row must be a valid object")
                row_id = self._resolve_row_id(payload.get("$id"))  # appwrite-facts §8: no `$id` → random id
                body = {k: v for k, v in payload.items() if k != "$id"}
                done.append(self.upsert(row_id, body, None))
        return done

    def delete(self, row_id: str) -> Row:
        old = self.rows.get(row_id)
        if old is None:
            raise row_not_found(row_id)
        self.rows.remove(row_id)
        if self.guard():
            self.guard().discard(old)  # type: ignore[union-attr]
        return old

    def matching(self, plan: Plan) -> list[Row]:
        # appwrite-facts §1.2: bulk update/delete reach every matching row (no default limit of 25).
        return run(plan, self.rows.all(), self.rows.get, self.rows.case_insensitive, default_limit=None)[0]

    def update_many(self, data: Any, plan: Plan) -> list[Row]:
        if not data:  # (inferred) bulk update needs data, like update_row
            raise AppwriteError("row_missing_payload", "The row data is missing.")
        values, ops, meta = self._split(data, operators=True)
        meta.pop("$id", None)
        with self.atomic():
            return [self._replace(old, values, ops, meta, None) for old in self.matching(plan)]

    def delete_many(self, plan: Plan) -> list[Row]:
        with self.atomic():
            return [self.delete(old["$id"]) for old in self.matching(plan)]

    def increment(self, row_id: str, column: str, value: int | float, bound: Any, sign: int) -> dict[str, Any]:
        """appwrite-facts §1.2 atomic increment/decrement; answers the row as the server does."""
        col = self.table.columns.get(column)
        if col is None:  # (inferred) the route looks the column up before the row
            raise AppwriteError("column_not_found", "Column with the requested key could not be found.")
        if col.type not in NUMERIC_TYPES or col.array:
            # appwrite-facts §1.2: integer, bigint or float, not an array → attribute_type_invalid.
            raise AppwriteError("attribute_type_invalid", f'Column "{column}" is not a numeric column')
        if col.type != "double":
            if isinstance(value, float) and not value.is_integer():
                raise argument_invalid("value", "Value must be an integer for an integer column")  # (inferred)
            value = int(value)
        old = self.rows.get(row_id)
        if old is None:
            # appwrite-facts §1.2: a missing row answers 404 column_not_found with a literal '%s'.
            raise AppwriteError("column_not_found", "Column with the requested key '%s' could not be found.")
        current = old.get(column)
        result = (0 if current is None else current) + sign * value  # PHP: null + value = value
        word = "maximum" if sign > 0 else "minimum"
        lo, hi = col.bounds()
        if bound is not None and (result > bound if sign > 0 else result < bound):
            # appwrite-facts §1.2: past max/min is rejected, not clamped.
            raise AppwriteError("column_limit_exceeded", f'tablesDB "{column}" has reached the {word} value of {bound}')
        if not lo <= result <= hi:
            # (inferred) the SQL column itself refuses an out-of-range value.
            raise AppwriteError(
                "column_limit_exceeded", f'tablesDB "{column}" has reached the {word} value of {hi if sign > 0 else lo}'
            )
        # appwrite-facts §1.2: `col = col + :val` leaves a NULL column NULL.
        stored = {**old, column: None if current is None else result, "$updatedAt": self.now}
        self.rows.put(stored)
        # appwrite-facts §1.2/§8: the answer shows the value and the row's previous `$updatedAt`.
        return self.wire({**old, column: result})
