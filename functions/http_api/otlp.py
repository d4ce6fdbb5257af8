"""``POST /v1/traces``: OpenTelemetry GenAI spans exported over OTLP/HTTP, logged as usage events.

OTLP/HTTP rules followed (opentelemetry-proto ``docs/specification.md``): ``application/json`` (OTLP/JSON) and
``application/x-protobuf`` bodies, optionally ``Content-Encoding: gzip`` (or ``deflate``); 200 with an
``ExportTraceServiceResponse`` whose ``partialSuccess`` counts the spans refused; 400 for a body that does not
decode. A protobuf request gets a protobuf ``ExportTraceServiceResponse`` (exporters such as Go's read partial
success only from one), a JSON request JSON. Every 4xx/5xx answer to a protobuf request is a protobuf
``google.rpc.Status`` (the specification's "MUST"; its message is the API error's code, message and fields); a JSON
request gets the API's JSON error.
"""

from __future__ import annotations

import zlib
from typing import Any

import structlog

from models.ai_usage import LogResult, LogStatus
from services.errors import PayloadTooLarge, ServiceError
from services.otlp_ingest import Conversion, OtlpDecodeError, convert_request, source_of
from services.usage_tracking_service import MAX_BATCH_EVENTS

from .errors import InvalidBody
from .handlers import Call
from .otlp_limits import MAX_SPANS, json_spans, protobuf_spans
from .request import ApiRequest, RawBody, parse_json_body
from .responses import ApiResponse
from .schemas import ErrorBody

log = structlog.get_logger("ai_usage.otlp")

OTLP_BODY_LIMIT = 16 * 1024 * 1024  # as sent and once decompressed; the OTel Collector's default is 20 MiB
JSON_TYPES = frozenset({"application/json"})
PROTOBUF_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
PROTOBUF_ANSWER = "application/x-protobuf"
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS}
_REASONS_SHOWN = 5
_MAX_REASON_CHARS = 300


class UnsupportedMediaType(ServiceError):
    status = 415
    code = "unsupported_media_type"


def export_traces(call: Call) -> dict[str, Any] | ApiResponse:
    """Log every GenAI span of an OTLP trace export; answer OTLP's ``ExportTraceServiceResponse``."""
    body: RawBody = call.body
    request = _decode(body.content_type, _decompress(body))
    if (spans := json_spans(request)) > MAX_SPANS:
        raise PayloadTooLarge(f"the export holds {spans} spans; send at most {MAX_SPANS} a request")
    answer = _answer(call, request)
    return _protobuf_answer(answer) if body.content_type in PROTOBUF_TYPES else answer


def _protobuf_answer(answer: dict[str, Any]) -> ApiResponse:
    from google.protobuf.json_format import ParseDict  # installed: the request was decoded with it
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    message = ParseDict(answer, ExportTraceServiceResponse())
    return ApiResponse(200, None, body=message.SerializeToString(), content_type=PROTOBUF_ANSWER)


# google.rpc.Code for the HTTP statuses the API answers (gRPC's HTTP mapping); OTLP clients may only record it.
_RPC_CODES = {401: 16, 403: 7, 404: 5, 405: 12, 429: 8, 500: 13, 501: 12, 503: 14, 504: 4}
_INVALID_ARGUMENT, _INTERNAL = 3, 13


def error_answer(request: ApiRequest, json_error: ApiResponse) -> ApiResponse:
    """The route's error answer as OTLP/HTTP requires it: a protobuf ``Status`` for a protobuf request.

    Without the protobuf packages the request could not be read either (415): the JSON error stands.
    """
    if RawBody.of(request).content_type not in PROTOBUF_TYPES or not isinstance(json_error.payload, ErrorBody):
        return json_error
    try:
        from google.rpc.status_pb2 import Status
    except ImportError:
        return json_error
    error = json_error.payload.error
    fields = "; ".join(f"{field.field}: {field.message}" for field in error.fields)
    message = f"{error.code}: {error.message}" + (f" ({fields})" if fields else "")
    fallback = _INVALID_ARGUMENT if json_error.status < 500 else _INTERNAL
    status = Status(code=_RPC_CODES.get(json_error.status, fallback), message=message)
    return ApiResponse(
        json_error.status,
        None,
        dict(json_error.headers),
        body=status.SerializeToString(),
        content_type=PROTOBUF_ANSWER,
    )


def _answer(call: Call, request: Any) -> dict[str, Any]:
    try:
        conversion = convert_request(request)
    except OtlpDecodeError as exc:
        raise InvalidBody(f"not an OTLP ExportTraceServiceRequest: {exc}") from None
    rejected = list(conversion.rejected)
    statuses = {status: 0 for status in LogStatus}
    for start in range(0, len(conversion.events), MAX_BATCH_EVENTS):
        chunk = conversion.events[start : start + MAX_BATCH_EVENTS]
        results = call.service.log_usage_batch([event for _, event in chunk])
        for (label, _), result in zip(chunk, results, strict=True):
            statuses[result.status] += 1
            if result.status in (LogStatus.REJECTED, LogStatus.CONFLICT):
                rejected.append((label, _reason(result)))
    _log_outcome(conversion, statuses, rejected)
    if not rejected:
        return {}
    shown = "; ".join(f"span {label}: {reason[:_MAX_REASON_CHARS]}" for label, reason in rejected[:_REASONS_SHOWN])
    more = f" (and {len(rejected) - _REASONS_SHOWN} more)" if len(rejected) > _REASONS_SHOWN else ""
    return {"partialSuccess": {"rejectedSpans": len(rejected), "errorMessage": shown + more}}


def _reason(result: LogResult) -> str:
    if result.status is LogStatus.CONFLICT:
        return f"exported before with other content ({', '.join(source_of(e.field) for e in result.errors)})"
    return "; ".join(f"{source_of(error.field)}: {error.message}" for error in result.errors) or "rejected"


def _log_outcome(conversion: Conversion, statuses: dict[LogStatus, int], rejected: list[tuple[str, str]]) -> None:
    line = log.warning if rejected else log.info
    line(
        "otlp.traces",
        stored=statuses[LogStatus.STORED],
        duplicates=statuses[LogStatus.DUPLICATE],
        rejected=len(rejected),
        ignored=conversion.ignored,
        reasons=[f"{label}: {reason[:_MAX_REASON_CHARS]}" for label, reason in rejected[:_REASONS_SHOWN]],
    )


def _decompress(body: RawBody) -> bytes:
    if body.content_encoding in ("", "identity"):
        return body.data
    wbits = _WBITS.get(body.content_encoding)
    if wbits is None:
        raise UnsupportedMediaType(f"Content-Encoding {body.content_encoding!r} is not supported; use gzip or none")
    inflater = zlib.decompressobj(wbits)
    try:
        data = inflater.decompress(body.data, OTLP_BODY_LIMIT)
    except zlib.error as exc:
        raise InvalidBody(f"the body is not valid {body.content_encoding}: {exc}") from None
    if inflater.unconsumed_tail:  # stopped at the limit with input left: a bomb, or just too much
        raise PayloadTooLarge(f"the body decompresses to more than {OTLP_BODY_LIMIT} bytes")
    if not inflater.eof:
        raise InvalidBody(f"the body is truncated {body.content_encoding}")
    return data


def _decode(content_type: str, data: bytes) -> Any:
    if content_type in JSON_TYPES or not content_type:  # no Content-Type at all: read it as OTLP/JSON
        return parse_json_body(data, "an OTLP/JSON body")
    if content_type in PROTOBUF_TYPES:
        return _protobuf(data)
    accepted = ", ".join(sorted(JSON_TYPES | PROTOBUF_TYPES))
    raise UnsupportedMediaType(f"Content-Type {content_type!r} is not supported; send one of {accepted}")


def _protobuf(data: bytes) -> Any:
    """The protobuf request in its OTLP/JSON shape (ids in base64, int64 as strings), which the converter reads."""
    try:  # the runtime dependency is optional: without it, protobuf is refused with a clear 415
        from google.protobuf.json_format import MessageToDict
        from google.protobuf.message import DecodeError
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    except ImportError:
        raise UnsupportedMediaType(
            "application/x-protobuf needs the opentelemetry-proto package on the server "
            "(pip install opentelemetry-proto); send application/json (OTLP/JSON) instead"
        ) from None
    if protobuf_spans(data) > MAX_SPANS:  # counted on the wire, before a message is built
        raise PayloadTooLarge(f"the export holds over {MAX_SPANS} spans; send at most {MAX_SPANS} a request")
    try:
        message = ExportTraceServiceRequest.FromString(data)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise InvalidBody(f"not an OTLP ExportTraceServiceRequest in protobuf: {exc}") from None
    return MessageToDict(message)
