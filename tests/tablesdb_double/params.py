"""Request parameter readers that fail the way Appwrite's framework validators fail."""

from __future__ import annotations

import contextlib
from typing import Any

from .errors import AppwriteError, argument_invalid

_MISSING: Any = object()


def _raw(params: dict[str, Any], name: str, default: Any) -> Any:
    value = params.get(name, _MISSING)
    if value is _MISSING or value is None:
        if default is _MISSING:
            # appwrite-facts §2.1: a missing required param is a 400 general_argument_invalid.
            raise AppwriteError("general_argument_invalid", f'Param "{name}" is not optional.')
        return default
    return value


def get_str(params: dict[str, Any], name: str, default: Any = _MISSING) -> Any:
    value = _raw(params, name, default)
    if value is not default and not isinstance(value, str):
        raise argument_invalid(name, "Value must be a valid string")
    return value


def get_bool(params: dict[str, Any], name: str, default: Any = _MISSING) -> Any:
    value = _raw(params, name, default)
    if value is default:
        return value
    # appwrite-facts §1: GET params arrive as the strings "true"/"false" [P27 client.py flatten].
    if value in ("true", "false"):
        return value == "true"
    if not isinstance(value, bool):
        raise argument_invalid(name, "Value must be a valid boolean")
    return value


def get_int(params: dict[str, Any], name: str, lo: int, hi: int, default: Any = _MISSING) -> Any:
    value = _raw(params, name, default)
    if value is default:
        return value
    if isinstance(value, str):  # GET params arrive as strings; the SDK sends floats as "60.0"
        with contextlib.suppress(ValueError):
            value = float(value) if "." in value else int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise argument_invalid(name, f"Value must be a valid range between {lo:,} and {hi:,}")
    return value


def get_number(params: dict[str, Any], name: str, default: Any = _MISSING) -> Any:
    value = _raw(params, name, default)
    if value is default:
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise argument_invalid(name, "Value must be a valid number")
    return value


def get_list(params: dict[str, Any], name: str, default: Any = _MISSING, max_items: int | None = None) -> Any:
    value = _raw(params, name, default)
    if value is default:
        return value
    if isinstance(value, dict) and all(k.isdigit() for k in value):
        value = [value[k] for k in sorted(value, key=int)]  # flattened GET arrays
    if not isinstance(value, list):
        raise argument_invalid(name, "Value must be a valid array")
    if max_items is not None and len(value) > max_items:
        raise argument_invalid(name, f"Value must a valid array no longer than {max_items} items")
    return value


def get_dict(params: dict[str, Any], name: str, default: Any = _MISSING) -> Any:
    value = _raw(params, name, default)
    if value is not default and not isinstance(value, dict):
        raise argument_invalid(name, "Value must be a valid object")
    return value
