"""The rules an event's identifiers, labels, text and time follow, each a pydantic validator, so every way in
(HTTP, Python, CLI, batch, OpenTelemetry) refuses the same input with the same field-named message."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

MAX_ID_CHARS = 128
# Deeper metadata is a bug or an attack: 256 levels made every answer for the event fail to render.
MAX_METADATA_DEPTH = 32


def _not_a_number(value: object) -> object:
    # pydantic would read 0, 1.7e9 or "1700000000" as Unix seconds (or milliseconds); the API documents an ISO-8601
    # string, so say so.
    if isinstance(value, int | float) or (isinstance(value, str) and _is_number(value)):
        raise ValueError("must be an ISO-8601 date-time string with a UTC offset, not a number")
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _aware_utc(value: datetime) -> datetime:
    # A naive timestamp is ambiguous (the replaced service mixed local and UTC dates), so refuse it.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must be timezone-aware (e.g. 2026-11-23T10:00:00Z)")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 has no UTC date; pydantic only maps ValueErrors
        raise ValueError("is out of range once converted to UTC") from None


def _optional_strip(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _not_an_operator(value: str | None) -> str | None:
    # Appwrite reads any string that decodes to a JSON object with a "method" as an update operator
    # (appwrite-facts §1.2), so such text could never be stored verbatim there; every store refuses it.
    if value and value.startswith("{"):
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            # Too deep for Python is deeper than PHP's json_decode (512 levels) reads: Appwrite stores it as text.
            return value
        if isinstance(decoded, dict) and "method" in decoded:
            raise ValueError('must not be a JSON object with a "method" key (the Appwrite store reserves it)')
    return value


def _encodable(value: str | None) -> str | None:
    # Stored and served as UTF-8: a lone UTF-16 surrogate ("\ud800", from a JS string sliced through an emoji)
    # passes str validation but can never be written back, so every answer for the event would fail.
    if value is not None and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"must be valid Unicode text (a lone surrogate at position {exc.start})") from None
    return value


def _no_control_characters(value: str | None) -> str | None:
    # Ids end up in logs, terminals, CSV cells and URLs; a control character in one is never legitimate.
    if value is not None and not value.isprintable():
        for index, char in enumerate(value):
            if unicodedata.category(char) == "Cc":
                raise ValueError(f"must not contain control characters (U+{ord(char):04X} at position {index})")
    return value


def _no_slash(value: str | None) -> str | None:
    # user_id and session_id are path segments of the read routes (/v1/users/{user_id}/...): an id with "/"
    # could be stored but never read back over HTTP, so it is refused where it would enter.
    if value is not None and "/" in value:
        raise ValueError('must not contain "/" (it is a path segment of the read routes)')
    return value


OptionalStrip = AfterValidator(_optional_strip)
NotOperator = AfterValidator(_not_an_operator)
Encodable = AfterValidator(_encodable)
NoControl = AfterValidator(_no_control_characters)
NoSlash = AfterValidator(_no_slash)
# The model strips whitespace before the length rules, so "   " is refused as empty.
Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS), Encodable, NoControl, NotOperator]
OptionalIdentifier = Annotated[
    str | None, Field(max_length=MAX_ID_CHARS), OptionalStrip, Encodable, NoControl, NotOperator
]
AwareDatetime = Annotated[datetime, BeforeValidator(_not_a_number), AfterValidator(_aware_utc)]


def check_metadata_shape(value: dict[str, Any]) -> None:
    """Refuse metadata nested deeper than ``MAX_METADATA_DEPTH``, walking iteratively (no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_METADATA_DEPTH:
            raise ValueError(f"must not be nested more than {MAX_METADATA_DEPTH} levels deep")
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values() if isinstance(child, dict | list))
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node if isinstance(child, dict | list))
