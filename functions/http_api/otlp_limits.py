"""How much an OTLP trace export may hold, counted before any span is converted (or, for protobuf, parsed).

A 16 MiB body can carry millions of empty spans; parsing them cost a worker ~40 s and 2 GB. The span count is read
off the JSON structure or walked off the protobuf wire format, stopping as soon as it passes ``MAX_SPANS``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# Far above what a real export holds (the SDK sends 512 spans a batch; 16 MiB of GenAI spans is ~20,000).
MAX_SPANS = 50_000


def json_spans(request: Any) -> int:
    """The spans of an OTLP/JSON request (a shape OTLP lacks counts as none: the converter names it)."""
    count = 0
    for resource_spans in _list_of(request.get("resourceSpans") if isinstance(request, dict) else None):
        for scope_spans in _list_of(resource_spans.get("scopeSpans") if isinstance(resource_spans, dict) else None):
            count += len(_list_of(scope_spans.get("spans") if isinstance(scope_spans, dict) else None))
    return count


def _list_of(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def protobuf_spans(data: bytes, most: int = MAX_SPANS) -> int:
    """The spans of an ``ExportTraceServiceRequest`` in protobuf, counted up to ``most + 1`` on the wire (field 1
    ``resource_spans``, its field 2 ``scope_spans``, their field 2 ``spans``); 0 for bytes that are not a
    well-formed message, which the full parse then names."""
    count = 0
    try:
        for outer, start, end in _length_fields(data, 0, len(data)):
            if outer != 1:
                continue
            for middle, scope_start, scope_end in _length_fields(data, start, end):
                if middle != 2:
                    continue
                for inner, _, _ in _length_fields(data, scope_start, scope_end):
                    count += inner == 2
                    if count > most:
                        return count
    except (IndexError, ValueError):
        return 0
    return count


def _length_fields(data: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(field number, start, end) of each length-delimited field in ``data[pos:end]``; other wire types skipped."""
    while pos < end:
        key, pos = _varint(data, pos)
        wire = key & 7
        if wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > end:
                raise ValueError("a field runs past its message")
            yield key >> 3, pos, pos + length
            pos += length
        elif wire == 0:
            _, pos = _varint(data, pos)
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"wire type {wire}")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")
