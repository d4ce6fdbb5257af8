"""OpenTelemetry GenAI spans to usage events: plain functions over an OTLP ``ExportTraceServiceRequest`` in its
OTLP/JSON shape (protobuf requests are turned into that shape first). No HTTP types here.

Token rule (GenAI semantic conventions, attribute registry notes on ``gen_ai.usage.*``): ``input_tokens`` SHOULD
include every input token, cache reads and cache writes included, and ``reasoning.output_tokens`` is included in
``output_tokens``: the ledger's own convention, so counts map one to one and are never added together. A span whose
cache parts exceed its ``input_tokens`` breaks that rule and is rejected rather than guessed at.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from models.ai_usage import MAX_ERROR_MESSAGE_CHARS
from services.pricing.ids import canonical_provider

OPERATION = "gen_ai.operation.name"
SYSTEM_USER_ID = "otel-unattributed"  # the user of a span that names none (user.id, enduser.id)
# Agent and tool spans wrap the model calls that are their own spans (and agent spans repeat their usage):
# recording them too would count the cost twice. ``ai_usage.record`` (a bool attribute) overrides either way.
SKIPPED_OPERATIONS = frozenset({"invoke_agent", "create_agent", "execute_tool"})
RECORD = "ai_usage.record"

# Ledger field <- the first attribute present. Cache writes have two spellings: the semantic-conventions
# registry's ``cache_creation`` and the GenAI conventions repository's newer ``cache_write``.
TOKEN_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "tokens_input": ("gen_ai.usage.input_tokens",),
    "tokens_output": ("gen_ai.usage.output_tokens",),
    "tokens_cached": ("gen_ai.usage.cache_read.input_tokens",),
    "tokens_cache_write": ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_write.input_tokens"),
    "tokens_reasoning": ("gen_ai.usage.reasoning.output_tokens",),
    "tokens_audio_output": ("gen_ai.usage.audio.output_tokens",),
}
# Audio and image input count their uncached tokens (README, token convention): the modality's total less its
# cache reads.
MODALITY_INPUT = {"tokens_audio_input": "audio", "tokens_image_input": "image"}
TEXT_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "user_id": ("user.id", "enduser.id"),
    "session_id": ("session.id", "gen_ai.conversation.id"),
    "model": ("gen_ai.response.model", "gen_ai.request.model"),
    "provider": ("gen_ai.provider.name", "gen_ai.system"),
    "task_type": ("ai_usage.task_type",),
    "feature": ("ai_usage.feature",),
    "tenant_id": ("ai_usage.tenant_id",),
    "character_id": ("ai_usage.character_id",),
}
_FIELD_SOURCES = {
    **{name: " or ".join(attrs) for name, attrs in (TOKEN_ATTRIBUTES | TEXT_ATTRIBUTES).items()},
    **{name: f"gen_ai.usage.{kind}.input_tokens" for name, kind in MODALITY_INPUT.items()},
    "request_duration_ms": "endTimeUnixNano - startTimeUnixNano",
    "timestamp": "endTimeUnixNano",
    "error_message": "status.message",
}
_HEX = re.compile(r"[0-9a-fA-F]+")
_MAX_META_TEXT = 128


class OtlpDecodeError(ValueError):
    """The body is not an ``ExportTraceServiceRequest``; the message names where (answered 400)."""


@dataclass
class Conversion:
    """What a request's spans became: events keyed by span (``trace/span`` hex), rejections, ignored spans."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    ignored: int = 0


class SpanRejected(ValueError):
    """One GenAI span cannot become an event (the request goes on without it)."""


def convert_request(request: Any) -> Conversion:
    """Every span of an OTLP/JSON trace export as an event, a rejection (with its reason) or ignored."""
    result = Conversion()
    for resource, span, where in _spans(request):
        attributes = _attributes(span.get("attributes"), f"{where}.attributes")
        operation = attributes.get(OPERATION)
        if not _wanted(operation, attributes.get(RECORD)):
            result.ignored += 1
            continue
        label = where
        try:
            label = span_label(span)
            event = span_event(span, attributes, resource)
        except SpanRejected as exc:
            result.rejected.append((label, str(exc)))
            continue
        if event is None:
            result.ignored += 1
        else:
            result.events.append((label, event))
    return result


def source_of(field_name: str) -> str:
    """The span attribute (or field) a ledger field came from, for error messages."""
    return _FIELD_SOURCES.get(field_name, field_name)


def _wanted(operation: Any, record: Any) -> bool:
    if record is False or not isinstance(operation, str) or not operation.strip():
        return False
    return record is True or operation.strip() not in SKIPPED_OPERATIONS


def _spans(request: Any) -> Iterator[tuple[dict[str, Any], dict[str, Any], str]]:
    """(resource attributes, span, location) for every span; ``OtlpDecodeError`` for a shape OTLP does not have."""
    top = _object(request, "body")
    for r, resource_spans in enumerate(_array(top.get("resourceSpans"), "resourceSpans")):
        where = f"resourceSpans[{r}]"
        resource_spans = _object(resource_spans, where)
        resource = _object(resource_spans.get("resource") or {}, f"{where}.resource")
        resource_attributes = _attributes(resource.get("attributes"), f"{where}.resource.attributes")
        for s, scope_spans in enumerate(_array(resource_spans.get("scopeSpans"), f"{where}.scopeSpans")):
            inner = f"{where}.scopeSpans[{s}]"
            for n, span in enumerate(_array(_object(scope_spans, inner).get("spans"), f"{inner}.spans")):
                yield resource_attributes, _object(span, f"{inner}.spans[{n}]"), f"{inner}.spans[{n}]"


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise OtlpDecodeError(f"{where}: must be an object")
    return value


def _array(value: Any, where: str) -> list[Any]:
    if value is None:  # an absent repeated field is empty
        return []
    if not isinstance(value, list):
        raise OtlpDecodeError(f"{where}: must be an array")
    return value


def _attributes(value: Any, where: str) -> dict[str, Any]:
    """KeyValue list to a dict of scalars; array and kvlist values are kept undecoded (never needed here)."""
    found: dict[str, Any] = {}
    for index, pair in enumerate(_array(value, where)):
        pair = _object(pair, f"{where}[{index}]")
        key = pair.get("key")
        if not isinstance(key, str):
            raise OtlpDecodeError(f"{where}[{index}].key: must be a string")
        found[key] = _scalar(_object(pair.get("value") or {}, f"{where}[{index}].value"))
    return found


def _scalar(value: dict[str, Any]) -> Any:
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return value["boolValue"]
    if "intValue" in value:  # int64: a decimal string in OTLP/JSON, a number from lenient exporters
        raw = value["intValue"]
        if isinstance(raw, str) and re.fullmatch(r"-?\d{1,20}", raw):
            return int(raw)
        return raw
    if "doubleValue" in value:
        return value["doubleValue"]
    return value or None  # arrayValue, kvlistValue, bytesValue: no mapped attribute takes them


def span_label(span: Mapping[str, Any]) -> str:
    """``trace/span`` in lower-case hex: ids are hex in OTLP/JSON, base64 from exporters that use protobuf's JSON."""
    return f"{_span_id(span.get('traceId'), 16, 'traceId')}/{_span_id(span.get('spanId'), 8, 'spanId')}"


def _span_id(value: Any, size: int, name: str) -> str:
    if not isinstance(value, str):
        raise SpanRejected(f"{name}: required, {size * 2} hex digits")
    raw: bytes | None = None
    if len(value) == size * 2 and _HEX.fullmatch(value):
        raw = bytes.fromhex(value)
    elif len(value) in (-(-size * 4 // 3), -(-size // 3) * 4):  # base64, unpadded or padded
        try:
            padded = value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4)  # URL-safe too
            raw = base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None or len(raw) != size:
        raise SpanRejected(f"{name}: must be {size * 2} hex digits (or {size} bytes in base64)")
    if not any(raw):
        raise SpanRejected(f"{name}: must not be all zeros (an invalid id in OTLP)")
    return raw.hex()


def span_event(span: Mapping[str, Any], attributes: dict[str, Any], resource: dict[str, Any]) -> dict[str, Any] | None:
    """The usage event of one GenAI span, or None when it bills nothing (no model and no usage attribute)."""
    trace_id, span_id = span_label(span).split("/")
    looked_up = {name: _first(attributes, resource, names) for name, names in TEXT_ATTRIBUTES.items()}
    counts = {name: _count(attributes, names) for name, names in TOKEN_ATTRIBUTES.items()}
    for name, kind in MODALITY_INPUT.items():
        total = _count(attributes, (f"gen_ai.usage.{kind}.input_tokens",))
        counts[name] = max(0, total - _count(attributes, (f"gen_ai.usage.{kind}.cache_read.input_tokens",)))
    reported = any(name.startswith("gen_ai.usage.") for name in attributes)
    if looked_up["model"] is None:
        if not reported:
            return None
        raise SpanRejected("gen_ai.response.model or gen_ai.request.model: required to price the usage")
    start, end = _nanos(span, "startTimeUnixNano"), _nanos(span, "endTimeUnixNano")
    if end < start:
        raise SpanRejected("endTimeUnixNano: must not be before startTimeUnixNano")
    event: dict[str, Any] = {name: value for name, value in looked_up.items() if value is not None}
    event.setdefault("user_id", SYSTEM_USER_ID)
    if "provider" in event:
        event["provider"] = canonical_provider(event["provider"])
    event.update({name: value for name, value in counts.items() if value})
    event.update(
        request_id=f"otel-{trace_id}-{span_id}",
        timestamp=_moment(end),
        request_duration_ms=(end - start + 500_000) // 1_000_000,
        metadata=_metadata(attributes[OPERATION], span.get("name"), resource),
    )
    status = span.get("status") or {}
    if isinstance(status, dict) and status.get("code") in (2, "STATUS_CODE_ERROR", "2"):
        message = status.get("message") if isinstance(status.get("message"), str) else ""
        error_type = attributes.get("error.type")
        text = message or (f"error.type {error_type}" if isinstance(error_type, str) else "span status ERROR")
        event.update(success=False, error_message=text[:MAX_ERROR_MESSAGE_CHARS])
    return event


def _first(attributes: dict[str, Any], resource: dict[str, Any], names: tuple[str, ...]) -> str | None:
    # The span's own attribute wins; a resource attribute (a tenant per deployment, say) applies to all its spans.
    for source in (attributes, resource):
        for name in names:
            value = source.get(name)
            if isinstance(value, bool):
                raise SpanRejected(f"{name}: must be a string")
            if isinstance(value, int):  # a numeric user id is still an id
                value = str(value)
            if isinstance(value, str) and value.strip():
                return value
            if value is not None and not isinstance(value, str):
                raise SpanRejected(f"{name}: must be a string")
    return None


def _count(attributes: dict[str, Any], names: tuple[str, ...]) -> int:
    for name in names:
        value = attributes.get(name)
        if value is None:
            continue
        if isinstance(value, float) and value.is_integer():  # JavaScript exporters may send whole doubles
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpanRejected(f"{name}: must be an integer")
        if value < 0:
            raise SpanRejected(f"{name}: must not be negative")
        return value
    return 0


def _nanos(span: Mapping[str, Any], name: str) -> int:
    value = span.get(name)
    # A fixed64 in OTLP/JSON is a decimal string of at most 20 ASCII digits ("²" is a digit to str.isdigit).
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SpanRejected(f"{name}: required, nanoseconds since the Unix epoch")
    return value


def _moment(nanos: int) -> datetime:
    try:
        return datetime.fromtimestamp(nanos // 10**9, UTC) + timedelta(microseconds=nanos % 10**9 // 1000)
    except (OverflowError, OSError, ValueError):
        raise SpanRejected("endTimeUnixNano: out of range") from None


def _metadata(operation: str, name: Any, resource: dict[str, Any]) -> dict[str, str]:
    found = {"otel.operation": operation, "otel.span_name": name, "service.name": resource.get("service.name")}
    return {key: value[:_MAX_META_TEXT] for key, value in found.items() if isinstance(value, str) and value}
