"""An event on its way to the ledger: encoded once, on the game's thread, into the compact JSON the ledger reads."""

from __future__ import annotations

import json
from typing import Any, NamedTuple


class Item(NamedTuple):  # a tuple: built on the game's thread for every event, so it must be cheap
    request_id: str
    body: str  # the event as JSON
    seq: int | None = None  # its spool row, when it is replayed from the spool


# Item(...) runs the Python __new__ NamedTuple generates; the game's thread builds the tuple directly.
new_item = tuple.__new__


# One encoder, built once: json.dumps with any option builds a new one per call. allow_nan=False: NaN is not
# JSON, and the ledger would refuse the whole batch for it.
_encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
# Its C core, built once too (JSONEncoder.encode builds one per call: ~7 µs of a call made with cold caches), with
# the same options, so the same text and errors; but without circular-reference markers (a dict every call would
# share, and an error leaves dirty): a circular event raises RecursionError, and _encoder then names the fault.
_c_make = json.encoder.c_make_encoder  # None without the _json accelerator (not CPython): _encoder does it all
_c_encode = _c_make and _c_make(
    None, _encoder.default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False
)


def encode(event: dict[str, Any]) -> str:
    """The event as compact JSON; TypeError or ValueError when it is not JSON."""
    if _c_encode is None:
        return _encoder.encode(event)
    try:
        return "".join(_c_encode(event, 0))
    except RecursionError:
        return _encoder.encode(event)  # ValueError for a circular event; RecursionError if only too deep


def safe_repr(value: object) -> str:
    try:
        return repr(value)[:2000]
    except Exception:
        return f"<{type(value).__name__}>"


def is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
