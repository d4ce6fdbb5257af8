"""Operator values inside row data (`Operator.increment(...)` JSON strings) and how they apply."""

from __future__ import annotations

import json
from typing import Any

from .columns import INT32, Column
from .errors import AppwriteError, not_implemented, structure_invalid

# appwrite-facts §1.2: every operator method known to the server [P27 operator.py; S parseOperators].
KNOWN_METHODS = frozenset(
    {
        "increment",
        "decrement",
        "multiply",
        "divide",
        "modulo",
        "power",
        "arrayAppend",
        "arrayPrepend",
        "arrayInsert",
        "arrayRemove",
        "arrayUnique",
        "arrayIntersect",
        "arrayDiff",
        "arrayFilter",
        "stringConcat",
        "stringReplace",
        "toggle",
        "dateAddDays",
        "dateSubDays",
        "dateSetNow",
    }
)


def parse_operator(value: Any) -> dict[str, Any] | None:
    """The operator a data value encodes, or None for a plain value.

    appwrite-facts §1.2: any string that decodes to JSON with a known `method` is an operator,
    even text the caller meant to store.
    """
    if not isinstance(value, str) or not value.lstrip().startswith("{"):
        return None
    try:
        decoded = json.loads(value)
    except ValueError:
        return None
    # Http/Databases/Action.php parseOperators: `is_string($decoded['method']) && Operator::isMethod(...)`: a
    # "method" holding a list or an object is plain data (and unhashable here).
    method = decoded.get("method") if isinstance(decoded, dict) else None
    if isinstance(method, str) and method in KNOWN_METHODS:
        return decoded
    return None


def _invalid(col: Column, why: str) -> AppwriteError:
    # appwrite-facts §1.2: an invalid operator gives 400 general_bad_request "Invalid operator for attribute …".
    return AppwriteError("general_bad_request", f'Invalid operator for attribute "{col.key}": {why}')


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def apply_operator(col: Column, operator: dict[str, Any], current: Any) -> Any:
    """New column value after the operator; `current` is None for NULL (and for a row being created)."""
    method = operator["method"]
    if method not in ("increment", "decrement"):
        raise not_implemented(f"the '{method}' operator")
    if col.type not in ("integer", "double") or col.array:
        # appwrite-facts §8: only integer and double accept it; bigint is rejected [U Validator/Operator.php].
        raise structure_invalid(f'Cannot apply {method} operator to non-numeric field "{col.key}"')
    values = operator.get("values")
    if not isinstance(values, list) or not 1 <= len(values) <= 2 or not all(map(_is_number, values)):
        raise _invalid(col, "values must be [value] or [value, limit] numbers")
    step, limit = values[0], (values[1] if len(values) == 2 else None)
    if col.type == "integer":
        if isinstance(step, float) and not step.is_integer():
            raise _invalid(col, "an integer column takes an integer step")  # (inferred)
        step = int(step)
    base = 0 if current is None else current  # appwrite-facts §8: operators treat NULL as 0.
    result = base + step if method == "increment" else base - step
    if limit is not None:
        passed = result > limit if method == "increment" else result < limit
        if passed:
            # appwrite-facts §8: a bound that would be passed leaves the value unchanged, no error.
            return current if current is not None else base
        return result
    if col.type == "integer" and not -INT32 - 1 <= result <= INT32:
        # appwrite-facts §8: on integer columns an operator without a bound is refused past
        # 2,147,483,647, even on 64-bit columns (the lower mirror is inferred).
        raise structure_invalid(
            f'Cannot apply {method} operator to "{col.key}": the result would pass the 32-bit limit '
            f"{INT32}; pass a {'max' if method == 'increment' else 'min'}"
        )
    return result
