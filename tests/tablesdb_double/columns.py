"""Column definitions: building them from requests, checking row values, reporting them."""

from __future__ import annotations

import ipaddress
import math
import re
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from . import params as p
from .errors import AppwriteError, argument_invalid, not_implemented, structure_invalid
from .values import KEY_RULE, is_key, normalize_datetime

INT32 = 2_147_483_647
INT64 = 9_223_372_036_854_775_807
PHP_INT_MIN = -INT64 - 1

# appwrite-facts §3.4 strings: limits per type; the text family counts bytes, the others characters.
BYTE_LIMITS = {"text": 65_535, "mediumtext": 16_777_215, "longtext": 4_294_967_295}
VARCHAR_MAX = 16_381  # appwrite-facts §1.1 [S TDB/Tables/Columns/Varchar/Create.php:60]
STRING_MAX = 1_073_741_824  # appwrite-facts §1.1 (deprecated `string`)
FORMAT_SIZES = {"email": 254, "url": 2000, "ip": 39, "enum": 255}  # appwrite-facts §3.4
STRING_TYPES = {"string", "varchar", *BYTE_LIMITS}
NUMERIC_TYPES = {"integer", "bigint", "double"}
# appwrite-facts §1.1: inline column types accepted by create_table [S Validator/Attributes.php].
INLINE_TYPES = {
    "string",
    "varchar",
    "text",
    "mediumtext",
    "longtext",
    "integer",
    "bigint",
    "double",
    "boolean",
    "datetime",
    "point",
    "linestring",
    "polygon",
    "email",
    "url",
    "ip",
    "enum",
}
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass
class Column:
    key: str
    type: str  # wire type: string varchar text mediumtext longtext integer bigint double boolean datetime
    required: bool
    created_at: str
    ready_at: float
    array: bool = False
    size: int = 0
    min: int | float | None = None
    max: int | float | None = None
    default: Any = None
    format: str = ""
    elements: list[str] = field(default_factory=list)
    # appwrite-facts §1.1: the worker sets `failed` (with an error) when it cannot build the column.
    failed: str = ""

    def available(self, now: float) -> bool:
        # appwrite-facts §1.1: columns made one at a time are 202 `processing`, then `available`.
        return not self.failed and now >= self.ready_at

    def bounds(self) -> tuple[int | float, int | float]:
        if self.type == "double":
            return (-math.inf if self.min is None else self.min, math.inf if self.max is None else self.max)
        # appwrite-facts §3.4: ±(2^63−1) for 64-bit (−2^63 itself rejected) or ±2147483647 for 32-bit.
        width = INT32 if self.size == 4 else INT64
        lo = -width if self.min is None else max(-width, self.min)
        hi = width if self.max is None else min(width, self.max)
        return lo, hi


def check_value(col: Column, value: Any) -> Any:
    """Validate one non-null value for a column; return it as stored (datetimes normalised)."""
    if col.array:
        if not isinstance(value, list):  # appwrite-facts §3.3: arrays accept null or a list
            raise structure_invalid(f'Attribute "{col.key}" must be an array')
        return [_check_scalar(col, item) for item in value]
    return _check_scalar(col, value)


def _check_scalar(col: Column, value: Any) -> Any:
    key, kind = col.key, col.type
    if kind in ("integer", "bigint"):
        lo, hi = col.bounds()
        # appwrite-facts §3.4: an integer must be a JSON int: 5.0 and booleans are rejected.
        if type(value) is not int or not lo <= value <= hi:
            bits = 32 if col.size == 4 else 64
            raise structure_invalid(
                f'Attribute "{key}" has invalid format. Value must be a valid signed {bits}-bit '
                f"integer between {lo} and {hi}"
            )
        return value
    if kind == "double":
        # appwrite-facts §3.2/§3.4: a float column takes ints or floats (not bools), inside min/max.
        lo, hi = col.bounds()
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or not lo <= value <= hi:
            raise structure_invalid(
                f'Attribute "{key}" has invalid format. Value must be a valid float between {lo} and {hi}'
            )
        return value
    if kind == "boolean":
        if not isinstance(value, bool):  # appwrite-facts §3.4: strict JSON bool.
            raise structure_invalid(f'Attribute "{key}" has invalid type. Value must be a valid boolean')
        return value
    if kind == "datetime":
        # appwrite-facts §3.4: 1000-01-01..9999-12-31, stored as UTC milliseconds.
        normal = normalize_datetime(value)
        if normal is None:
            raise structure_invalid(
                f'Attribute "{key}" has invalid format. Value must be valid date between '
                "1000-01-01 00:00:00 and 9999-12-31 23:59:59."
            )
        return normal
    return _check_string(col, value)


def _check_string(col: Column, value: Any) -> Any:
    key = col.key
    if col.type in BYTE_LIMITS:
        # appwrite-facts §3.4 / §8: text limits count bytes in utopia-php/database 7.2.6.
        if not isinstance(value, str) or len(value.encode()) > col.size:
            raise structure_invalid(
                f'Attribute "{key}" has invalid type. Value must be a valid string and no longer than {col.size} bytes'
            )
        return value
    # appwrite-facts §3.4: varchar and string limits count characters (mb_strlen).
    if not isinstance(value, str) or len(value) > col.size:
        raise structure_invalid(
            f'Attribute "{key}" has invalid type. Value must be a valid string and no longer than {col.size} chars'
        )
    if col.format == "enum" and value not in col.elements:
        # appwrite-facts §1.1: enum values are a strict, case-sensitive whitelist.
        raise structure_invalid(
            f'Attribute "{key}" has invalid format. Value must be one of ({", ".join(col.elements)})'
        )
    if col.format and col.format != "enum" and not _format_ok(col.format, value):
        raise structure_invalid(f'Attribute "{key}" has invalid format. Value must be a valid {col.format}')
    return value


def _format_ok(fmt: str, value: str) -> bool:
    if fmt == "email":
        return _EMAIL_RE.fullmatch(value) is not None
    if fmt == "url":
        parsed = urlparse(value)
        return bool(parsed.scheme and parsed.netloc)
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def width(col: Column) -> int:
    """Bytes the column costs in the row (appwrite-facts §3.4 per-table limits [U Adapter/SQL.php])."""
    if col.array or col.type in BYTE_LIMITS or (col.type == "string" and col.size > VARCHAR_MAX):
        return 20
    if col.type in ("string", "varchar"):
        return 4 * col.size + (1 if col.size <= 255 else 2)
    return {"integer": col.size, "bigint": 8, "double": 8, "boolean": 1, "datetime": 7}.get(col.type, 0)


ROW_OVERHEAD = 1_067  # appwrite-facts §3.4: row width starts from 1,067 bytes of overhead.
ROW_WIDTH_MAX = 65_535


def build_column(kind: str, spec: dict[str, Any], *, param: str | None, now_iso: str, ready_at: float) -> Column:
    """Build a column from a dedicated endpoint body (param=None) or an inline definition.

    Errors name the endpoint param, or the `columns` param of create_table for inline definitions.
    """

    def bad(name: str, rule: str) -> AppwriteError:
        return argument_invalid(param or name, rule if param is None else f"{name}: {rule}")

    key = p.get_str(spec, "key")
    if not is_key(key):
        raise bad("key", KEY_RULE)
    required = bool(p.get_bool(spec, "required", False if param else p._MISSING))
    array = bool(p.get_bool(spec, "array", False))
    fmt = spec.get("format") or ""
    if kind == "string" and fmt in ("enum", "email", "url", "ip"):
        kind = fmt
    if kind == "float":
        kind = "double"
    if kind in ("point", "linestring", "polygon"):
        raise not_implemented("spatial columns")
    if kind == "relationship":
        raise bad("type", "Relationship columns cannot be created inline")  # appwrite-facts §1.1
    if spec.get("encrypt"):
        raise not_implemented("encrypted columns")
    col = Column(key=key, type=kind, required=required, created_at=now_iso, ready_at=ready_at, array=array)
    if kind in ("varchar", "string"):
        top = VARCHAR_MAX if kind == "varchar" else STRING_MAX
        col.size = p.get_int(spec, "size", 1, top)  # appwrite-facts §1.1: size required, 1..16381
    elif kind in BYTE_LIMITS:
        col.size = BYTE_LIMITS[kind]
    elif kind in ("enum", "email", "url", "ip"):
        col.type, col.format, col.size = "string", kind, FORMAT_SIZES[kind]
        if kind == "enum":
            elements = p.get_list(spec, "elements", max_items=100)
            if not elements or any(not isinstance(e, str) or not 0 < len(e) <= 255 for e in elements):
                # appwrite-facts §1.1: up to 100 elements, each at most 255 chars.
                raise bad("elements", "Value must be an array of 1 to 100 strings of at most 255 chars")
            col.elements = list(elements)
    elif kind in NUMERIC_TYPES:
        _numeric_range(col, spec, param, bad)
    elif kind == "datetime":
        col.format = "datetime"
    elif kind != "boolean":
        raise bad("type", f"Unknown column type: {kind}")
    default = spec.get("default")
    if default is not None:
        if required or array:
            # appwrite-facts §1.1: a default with required or array is rejected.
            if param:
                raise bad("default", "Cannot set default value for required or array column")
            raise AppwriteError("column_default_unsupported", "Cannot set default value for required column")
        try:
            col.default = check_value(col, default)
        except AppwriteError as exc:
            raise bad("default", exc.message) from exc
    return col


def _numeric_range(col: Column, spec: dict[str, Any], param: str | None, bad: Any) -> None:
    if col.type == "double":
        col.min, col.max = p.get_number(spec, "min", None), p.get_number(spec, "max", None)
    else:
        col.min = p.get_int(spec, "min", PHP_INT_MIN, INT64, None)
        col.max = p.get_int(spec, "max", PHP_INT_MIN, INT64, None)
    if col.min is not None and col.max is not None and col.min > col.max:
        if param:
            raise bad("min", "Minimum value must be lesser than maximum value")
        raise AppwriteError("column_value_invalid", "Minimum value must be lesser than maximum value")
    if col.type == "bigint":
        col.size = 8  # appwrite-facts §1.1: bigint is always BIGINT.
    elif col.type == "integer" and param is None:
        # appwrite-facts §3.4: dedicated endpoint is 64-bit unless max ≤ 2147483647.
        col.size = 4 if col.max is not None and col.max <= INT32 else 8
    elif col.type == "integer":
        # appwrite-facts §1.1 gotcha: an inline integer without size is a 32-bit INT; size 8 is BIGINT.
        col.size = 8 if spec.get("size") == 8 else 4


def column_model(col: Column, now: float) -> dict[str, Any]:
    """The column as the API reports it [P27 models/column_*.py]."""
    model: dict[str, Any] = {
        "key": col.key,
        "type": col.type,
        "status": "failed" if col.failed else ("available" if col.available(now) else "processing"),
        "error": col.failed,
        "required": col.required,
        "array": col.array,
        "$createdAt": col.created_at,
        "$updatedAt": col.created_at,
        "description": "",
        "default": col.default,
    }
    if col.type in ("varchar", "string"):
        model.update(size=col.size, encrypt=False)
    if col.type in BYTE_LIMITS:
        model["encrypt"] = False
    if col.type in NUMERIC_TYPES:
        lo, hi = col.bounds()
        if col.type == "double":  # PHP reports ±PHP_FLOAT_MAX where JSON has no infinity
            lo, hi = max(lo, -sys.float_info.max), min(hi, sys.float_info.max)
        model.update(min=lo, max=hi)
    if col.format:
        model["format"] = col.format
    if col.format == "enum":
        model["elements"] = list(col.elements)
    return model
