"""Queries: parse and validate the JSON wire format, then filter, order and page rows."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cmp_to_key
from typing import Any

from .columns import STRING_TYPES, Column
from .errors import AppwriteError, argument_invalid, query_invalid
from .rowset import Row
from .schema import Table
from .values import normalize_datetime

MAX_QUERIES, MAX_QUERY_CHARS = 100, 4096  # appwrite-facts §3.2 [S XList.php ArrayList(Text(4096), 100)]
MAX_VALUES = 500  # appwrite-facts §3.2 (APP_DATABASE_QUERY_MAX_VALUES)
DEFAULT_LIMIT = 25  # appwrite-facts §3.2 [U Database::find `$limit ?? 25`]
TOTAL_CAP = 5000  # appwrite-facts §3.2 (APP_LIMIT_COUNT)
PHP_INT_MAX = 9_223_372_036_854_775_807

# appwrite-facts §3.1: methods of server 1.9.6 [U Query.php TYPE_*]; the double implements FILTERS + PAGING.
SERVER_METHODS = frozenset(
    {
        "equal",
        "notEqual",
        "lessThan",
        "lessThanEqual",
        "greaterThan",
        "greaterThanEqual",
        "contains",
        "containsAny",
        "containsAll",
        "notContains",
        "search",
        "notSearch",
        "isNull",
        "isNotNull",
        "between",
        "notBetween",
        "startsWith",
        "notStartsWith",
        "endsWith",
        "notEndsWith",
        "regex",
        "exists",
        "notExists",
        "elemMatch",
        "select",
        "orderAsc",
        "orderDesc",
        "orderRandom",
        "limit",
        "offset",
        "cursorAfter",
        "cursorBefore",
        "and",
        "or",
    }
)
FILTERS = frozenset(
    {
        "equal",
        "notEqual",
        "lessThan",
        "lessThanEqual",
        "greaterThan",
        "greaterThanEqual",
        "between",
        "isNull",
        "isNotNull",
        "startsWith",
        "endsWith",
        "contains",
        "and",
        "or",
    }
)
PAGING = frozenset({"select", "orderAsc", "orderDesc", "limit", "offset", "cursorAfter", "cursorBefore"})
_ONE_VALUE = {"notEqual", "lessThan", "lessThanEqual", "greaterThan", "greaterThanEqual", "startsWith", "endsWith"}
_SYSTEM = {"$id": "id", "$sequence": "sequence", "$createdAt": "datetime", "$updatedAt": "datetime"}


@dataclass
class Filter:
    method: str
    attribute: str = ""
    values: list[Any] = field(default_factory=list)
    children: list[Filter] = field(default_factory=list)


@dataclass
class Plan:
    filters: list[Filter] = field(default_factory=list)
    orders: list[tuple[str, bool]] = field(default_factory=list)  # (attribute, descending)
    limit: int | None = None
    offset: int = 0
    cursor: tuple[str, str] | None = None  # (cursorAfter|cursorBefore, row id)
    select: list[str] | None = None


def parse(raw: Any, table: Table, now: float, *, select_only: bool = False) -> Plan:
    raw = [] if raw is None else raw
    if isinstance(raw, dict) and all(k.isdigit() for k in raw):
        raw = [raw[k] for k in sorted(raw, key=int)]
    if (
        not isinstance(raw, list)
        or len(raw) > MAX_QUERIES
        or any(not isinstance(q, str) or not 0 < len(q) <= MAX_QUERY_CHARS for q in raw)
    ):
        # appwrite-facts §3.2: >100 queries or a string over 4096 chars → general_argument_invalid.
        raise argument_invalid(
            "queries",
            f"Value must a valid array no longer than {MAX_QUERIES} items and Value must be a valid "
            f"string and at least 1 chars and no longer than {MAX_QUERY_CHARS} chars",
        )
    columns = {c.key: c for c in table.visible_columns(now)}
    plan = Plan()
    for text in raw:
        try:
            node = json.loads(text)
        except ValueError:
            raise query_invalid(text) from None
        method = _method(node, text)
        if select_only and method != "select":
            # appwrite-facts §1.2: get_row takes only `select` queries.
            raise query_invalid(f"Query method not valid here: {method}. Only select is allowed")
        if method in FILTERS:
            plan.filters.append(_filter(node, columns))
        else:
            _paging(plan, method, node.get("attribute", ""), node.get("values", []), columns)
    return plan


def _method(node: Any, text: str) -> str:
    if not isinstance(node, dict) or not isinstance(node.get("method"), str):
        raise query_invalid(text)
    method = node["method"]
    if method not in SERVER_METHODS:
        # appwrite-facts §3.1: SDK-27-only methods (count, join, …) → "Invalid query method".
        raise query_invalid(f"Invalid query method: {method}")
    if method not in FILTERS and method not in PAGING:
        raise AppwriteError(
            "general_query_invalid",
            f"Invalid query: the TablesDB test double does not implement the '{method}' query method",
        )
    if not isinstance(node.get("values", []), list) or not isinstance(node.get("attribute", ""), str):
        raise query_invalid(text)
    return method


def _kind(attribute: str, columns: dict[str, Column]) -> Column | str:
    if attribute in _SYSTEM:
        return _SYSTEM[attribute]
    col = columns.get(attribute)
    if col is None:
        # appwrite-facts §3.2: unknown column → "Invalid query: Attribute not found in schema: foo".
        raise query_invalid(f"Attribute not found in schema: {attribute}")
    return col


def _filter(node: dict[str, Any], columns: dict[str, Column]) -> Filter:
    method, values = node["method"], node.get("values", [])
    if method in ("and", "or"):
        # appwrite-facts §3.1: and/or hold nested query objects, at least 2, filters only.
        if len(values) < 2 or any(not isinstance(v, dict) for v in values):
            raise query_invalid(f"{method} queries require at least two nested queries")
        children = []
        for child in values:
            if _method(child, json.dumps(child)) not in FILTERS:
                raise query_invalid(f"{method} queries accept only filter queries")
            children.append(_filter(child, columns))
        return Filter(method, children=children)
    attribute = node.get("attribute", "")
    kind = _kind(attribute, columns)
    if len(values) > MAX_VALUES:
        # appwrite-facts §3.2: more than 500 values → general_query_invalid.
        raise query_invalid(f"Query on attribute has greater than {MAX_VALUES} values: {attribute}")
    if method in ("isNull", "isNotNull"):
        return Filter(method, attribute)
    expected = 2 if method == "between" else 1 if method in _ONE_VALUE else None
    if (expected is not None and len(values) != expected) or not values:
        # appwrite-facts §3.1: comparisons take exactly one value, between exactly two.
        raise query_invalid(f"{method} queries require {expected or 'at least one'} value(s)")
    is_array = isinstance(kind, Column) and kind.array
    is_text = kind == "id" or (isinstance(kind, Column) and kind.type in STRING_TYPES)
    if is_array and method != "contains":
        # appwrite-facts §3.2: array columns accept only contains/isNull/isNotNull here.
        raise query_invalid(f'Cannot query {method} on attribute "{attribute}" because it is an array.')
    if method in ("startsWith", "endsWith", "contains") and not (is_text or is_array):
        raise query_invalid(f'Cannot query {method} on attribute "{attribute}": it is not a string')
    return Filter(method, attribute, [_value(kind, attribute, v) for v in values])


def _value(kind: Column | str, attribute: str, value: Any) -> Any:
    """appwrite-facts §3.2: query values are validated strictly by column type [U Filter.php]."""
    type_ = kind if isinstance(kind, str) else kind.type
    ok: bool
    if type_ in ("integer", "bigint"):
        ok = type(value) is int  # 5.0 and booleans are rejected
    elif type_ == "double":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif type_ == "boolean":
        ok = isinstance(value, bool)  # 1/0 are rejected
    elif type_ == "sequence":
        ok = type(value) is int or (isinstance(value, str) and value.isdigit())
        value = int(value) if ok else value
    elif type_ == "datetime":
        normal = normalize_datetime(value)  # appwrite-facts §3.4: query values get the UTC conversion
        ok, value = normal is not None, normal
    else:
        ok = isinstance(value, str)
    if not ok:
        raise query_invalid(f'Query value is invalid for attribute "{attribute}"')
    return value


def _paging(plan: Plan, method: str, attribute: str, values: list[Any], columns: dict[str, Column]) -> None:
    if method in ("orderAsc", "orderDesc"):
        _kind(attribute, columns)
        plan.orders.append((attribute, method == "orderDesc"))
    elif method == "select":
        for name in values:
            if not isinstance(name, str):
                raise query_invalid("select values must be attribute names")
            if name != "*" and name not in _SYSTEM and name not in ("$permissions", "$tableId", "$databaseId"):
                _kind(name, columns)
        plan.select = [*(plan.select or []), *values]
    elif method == "limit":
        if len(values) != 1 or type(values[0]) is not int or not 1 <= values[0] <= PHP_INT_MAX:
            # appwrite-facts §3.2: limit(0) is invalid, the range is 1..PHP_INT_MAX.
            raise query_invalid(f"Invalid limit: Value must be a valid range between 1 and {PHP_INT_MAX:,}")
        plan.limit = values[0] if plan.limit is None else plan.limit  # the first limit wins
    elif method == "offset":
        if len(values) != 1 or type(values[0]) is not int or not 0 <= values[0] <= PHP_INT_MAX:
            raise query_invalid(f"Invalid offset: Value must be a valid range between 0 and {PHP_INT_MAX:,}")
        plan.offset = values[0]
    else:
        if len(values) != 1 or not isinstance(values[0], str) or not values[0]:
            raise query_invalid("Invalid cursor: a cursor takes one row id")
        plan.cursor = plan.cursor or (method, values[0])


def _fold(value: Any, ci: bool) -> Any:
    # appwrite-facts §3.2 last bullet: utf8mb4_general_ci compares strings case-insensitively.
    return value.lower() if ci and isinstance(value, str) else value


def matches(row: Row, flt: Filter, ci: bool) -> bool:
    if flt.method == "and":
        return all(matches(row, c, ci) for c in flt.children)
    if flt.method == "or":
        return any(matches(row, c, ci) for c in flt.children)
    stored = row.get(flt.attribute)
    if flt.method == "isNull":
        return stored is None
    if flt.method == "isNotNull":
        return stored is not None
    if stored is None:
        return False  # SQL three-valued logic: NULL matches no comparison (inferred)
    if isinstance(stored, list):  # array column: contains = any listed element present
        return any(_fold(v, ci) in [_fold(s, ci) for s in stored] for v in flt.values)
    have, want = _fold(stored, ci), [_fold(v, ci) for v in flt.values]
    method = flt.method
    if method == "equal":
        return have in want  # several values mean IN
    if method == "contains":
        return any(w in have for w in want)  # appwrite-facts §3.2: substring match on strings
    if method == "between":
        return want[0] <= have <= want[1]  # inclusive, like SQL BETWEEN
    return {
        "notEqual": have != want[0],
        "lessThan": have < want[0],
        "lessThanEqual": have <= want[0],
        "greaterThan": have > want[0],
        "greaterThanEqual": have >= want[0],
        "startsWith": isinstance(have, str) and have.startswith(want[0]),
        "endsWith": isinstance(have, str) and have.endswith(want[0]),
    }[method]


def _comparator(orders: list[tuple[str, bool]], ci: bool) -> Callable[[Row, Row], int]:
    def cmp(a: Row, b: Row) -> int:
        for attribute, desc in orders:
            x, y = a.get(attribute), b.get(attribute)
            # MariaDB sorts NULL first ascending, last descending.
            kx = (0, 0) if x is None else (1, _fold(x, ci))
            ky = (0, 0) if y is None else (1, _fold(y, ci))
            if kx != ky:
                result = -1 if kx < ky else 1
                return -result if desc else result
        return 0

    return cmp


def run(
    plan: Plan,
    rows: list[Row],
    lookup: Callable[[str], Row | None],
    ci: bool,
    default_limit: int | None = DEFAULT_LIMIT,
) -> tuple[list[Row], int]:
    """Rows of the page and the uncapped count of rows matching the filters."""
    found = [r for r in rows if all(matches(r, f, ci) for f in plan.filters)]
    orders = list(plan.orders)
    if not any(a == "$sequence" for a, _ in orders):
        # appwrite-facts §3.2: `$sequence` is always appended as tie-breaker; §8: in
        # utopia-php/database 7.2.6 it follows the last order's direction (ascending by default).
        orders.append(("$sequence", orders[-1][1] if orders else False))
    cmp = _comparator(orders, ci)
    found.sort(key=cmp_to_key(cmp))
    limit = plan.limit if plan.limit is not None else default_limit
    if plan.cursor is not None:
        kind, row_id = plan.cursor
        anchor = lookup(row_id)
        if anchor is None:
            # appwrite-facts §3.2: the cursor row must exist.
            raise AppwriteError("general_cursor_not_found", "Cursor not found")
        for attribute, _ in plan.orders:
            if anchor.get(attribute) is None:
                # appwrite-facts §2.2: an ordering column that is null on the cursor row.
                raise AppwriteError("database_query_order_null", f'Order attribute "{attribute}" is empty')
        if kind == "cursorAfter":
            page = [r for r in found if cmp(r, anchor) > 0][plan.offset :]
        else:
            before = [r for r in found if cmp(r, anchor) < 0][::-1][plan.offset :]
            return (before[:limit] if limit is not None else before)[::-1], len(found)
    else:
        page = found[plan.offset :]
    return (page[:limit] if limit is not None else page), len(found)
