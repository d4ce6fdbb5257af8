"""POST /v1/traces on a running server: spans the real OpenTelemetry SDK makes, sent by the real OTLP/HTTP exporter
(protobuf, plain and gzip), and OTLP/JSON bodies as the OTLP specification writes them."""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToJson
from google.rpc.status_pb2 import Status as RpcStatus
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from functions.http_api.otlp_limits import MAX_SPANS, protobuf_spans
from tests.http_harness import ADAPTERS, ADMIN, ADMIN_KEY, NOW, SERVER, SERVER_KEY, LiveServer, live_server, make_app
from tests.test_otlp_ingest import chat, export

END_NS = int(NOW.timestamp()) * 10**9
JSON = {**SERVER, "Content-Type": "application/json"}
PROTOBUF = {**SERVER, "Content-Type": "application/x-protobuf"}


@pytest.fixture(scope="module", params=ADAPTERS)  # the WSGI app ai-usage serve runs, and functions-framework's
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    app = make_app(Path(tmp_path_factory.mktemp("otlp")) / "usage.db")
    with live_server(app, request.param) as server:
        yield server
    app.close()


def sdk_spans(user: str, count: int = 1, status: Status | None = None, **attributes: Any) -> list[ReadableSpan]:
    """Finished spans from the real SDK: a GenAI chat span per count, plus one plain span that is not GenAI."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "game-backend"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("game")
    for index in range(count):
        span = tracer.start_span("chat gpt-4o", start_time=END_NS - 800_000_000 - index)
        span.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 200,
                "gen_ai.usage.cache_read.input_tokens": 600,
                "user.id": user,
                "ai_usage.task_type": "npc_dialogue",
                **attributes,
            }
        )
        if status is not None:
            span.set_status(status)
        span.end(end_time=END_NS - index)
    tracer.start_span("GET /quests", start_time=END_NS - 10).end(end_time=END_NS)
    provider.shutdown()
    return list(memory.get_finished_spans())


def exporter(api: LiveServer, key: str = SERVER_KEY, **options: Any) -> OTLPSpanExporter:
    headers = {"Authorization": f"Bearer {key}"}
    return OTLPSpanExporter(endpoint=f"{api.url}/v1/traces", headers=headers, timeout=5, **options)


def requests_of(api: LiveServer, user: str) -> int:
    return api.app.service.get_daily_usage(user, NOW.date()).total_requests


def request_id(span: ReadableSpan) -> str:
    return f"otel-{span.context.trace_id:032x}-{span.context.span_id:016x}"


def test_spans_exported_by_the_sdk_are_logged_once_even_when_exported_again(api: LiveServer) -> None:
    spans = sdk_spans("otel-player-1", count=3)
    sender = exporter(api)

    assert sender.export(spans) is SpanExportResult.SUCCESS
    assert sender.export(spans) is SpanExportResult.SUCCESS  # a retried export: duplicates, counted once

    assert requests_of(api, "otel-player-1") == 3
    stored = api.app.service.get_event(request_id(spans[0]))
    assert stored is not None
    assert (stored.tokens_input, stored.tokens_cached, stored.tokens_output) == (1000, 600, 200)
    assert (stored.model, stored.provider, stored.task_type.value) == ("gpt-4o", "openai", "npc_dialogue")
    assert stored.request_duration_ms == 800 and stored.success


def test_a_gzip_export_of_a_failed_call_is_a_failed_event(api: LiveServer) -> None:
    spans = sdk_spans("otel-player-2", status=Status(StatusCode.ERROR, "upstream 529 overloaded"))

    assert exporter(api, compression=Compression.Gzip).export(spans) is SpanExportResult.SUCCESS

    stored = api.app.service.get_event(request_id(spans[0]))
    assert stored is not None
    assert (stored.success, stored.error_message) == (False, "upstream 529 overloaded")


def test_the_same_span_as_otlp_json_with_base64_ids_counts_once_with_its_protobuf_export(api: LiveServer) -> None:
    spans = sdk_spans("otel-player-3")
    # Protobuf's own JSON mapping (some exporters send it) writes ids in base64, not OTLP/JSON's hex.
    as_json = MessageToJson(encode_spans(spans))

    first = api.post("/v1/traces", data=as_json, headers=JSON)
    again = api.post("/v1/traces", data=encode_spans(spans).SerializeToString(), headers=PROTOBUF)

    assert (first.status_code, first.json(), again.status_code) == (200, {}, 200)
    # A protobuf request is answered in protobuf, as OTLP/HTTP says (Go's exporter reads partial success only so).
    assert again.headers["content-type"] == "application/x-protobuf"
    assert ExportTraceServiceResponse.FromString(again.content) == ExportTraceServiceResponse()
    assert requests_of(api, "otel-player-3") == 1


def test_a_protobuf_export_with_a_bad_span_gets_partial_success_in_protobuf(api: LiveServer) -> None:
    spans = sdk_spans("otel-player-9")
    request = encode_spans(spans)
    # A span exported before with other numbers is a conflict: reported, never counted twice.
    api.post("/v1/traces", data=request.SerializeToString(), headers=PROTOBUF)
    changed = encode_spans(spans)
    for span in changed.resource_spans[0].scope_spans[0].spans:
        for attribute in span.attributes:
            if attribute.key == "gen_ai.usage.input_tokens":
                attribute.value.int_value += 1
    answer = api.post("/v1/traces", data=changed.SerializeToString(), headers=PROTOBUF)
    message = ExportTraceServiceResponse.FromString(answer.content)
    assert answer.status_code == 200 and message.partial_success.rejected_spans == 1
    assert "exported before with other content" in message.partial_success.error_message


def test_an_export_with_some_bad_spans_stores_the_others_and_reports_partial_success(api: LiveServer) -> None:
    good = {**chat(user__id="otel-player-4", gen_ai__usage__input_tokens=100), "spanId": "9999999999999999"}
    bad = {**chat(user__id="otel-player-4", gen_ai__usage__input_tokens=-5), "spanId": "aaaaaaaaaaaaaaaa"}
    unknown_task = {**chat(user__id="otel-player-4", ai_usage__task_type="poetry"), "spanId": "bbbbbbbbbbbbbbbb"}
    not_genai = {**chat(), "spanId": "cccccccccccccccc", "attributes": []}

    response = api.post("/v1/traces", json=export(good, bad, unknown_task, not_genai), headers=SERVER)

    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == 2
    assert "/aaaaaaaaaaaaaaaa: gen_ai.usage.input_tokens: must not be negative" in partial["errorMessage"]
    assert "/bbbbbbbbbbbbbbbb: ai_usage.task_type: must be one of" in partial["errorMessage"]
    assert requests_of(api, "otel-player-4") == 1


def test_an_export_of_more_spans_than_any_exporter_sends_is_refused_before_any_is_converted(api: LiveServer) -> None:
    # 16 MiB of empty spans was ~8 million of them: 43 s and 2 GB of one worker before the count was checked.
    empty_spans = b"\x12\x00" * (MAX_SPANS + 1)  # ScopeSpans.spans, each an empty Span
    scope = b"\x12" + _varint(len(empty_spans)) + empty_spans  # ResourceSpans.scope_spans
    body = b"\x0a" + _varint(len(scope)) + scope  # ExportTraceServiceRequest.resource_spans
    answer = api.post("/v1/traces", data=body, headers=PROTOBUF)  # counted on the wire, stopping past the limit
    assert answer.status_code == 413 and "at most 50000" in RpcStatus.FromString(answer.content).message
    as_json = {"resourceSpans": [{"scopeSpans": [{"spans": [{}] * (MAX_SPANS + 1)}]}]}
    assert api.post("/v1/traces", json=as_json, headers=SERVER).status_code == 413


def test_the_wire_count_of_spans_is_the_messages_own() -> None:
    spans = sdk_spans("otel-player-7", count=3) + sdk_spans("otel-player-8", count=2)
    request = encode_spans(spans)
    data = request.SerializeToString()
    real = sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)
    assert real >= 5 and protobuf_spans(data) == real
    assert protobuf_spans(data, most=2) == 3  # stops once past the limit
    assert protobuf_spans(data[:-3]) == 0  # truncated: the full parse names it


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def test_a_span_exported_again_with_other_usage_is_rejected_as_a_conflict(api: LiveServer) -> None:
    first = chat(user__id="otel-player-5", gen_ai__usage__input_tokens=10)
    first["spanId"] = "dddddddddddddddd"
    changed = {**first, "attributes": chat(user__id="otel-player-5", gen_ai__usage__input_tokens=11)["attributes"]}

    assert api.post("/v1/traces", json=export(first), headers=SERVER).json() == {}
    partial = api.post("/v1/traces", json=export(changed), headers=SERVER).json()["partialSuccess"]

    assert partial["rejectedSpans"] == 1 and "exported before with other content" in partial["errorMessage"]


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"{not json", JSON, 400),
        (b"", JSON, 400),
        (b"[]", JSON, 400),
        (b'{"resourceSpans": {"a": 1}}', JSON, 400),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": ["x"]}]}]}', JSON, 400),
        (b"\xff\xff\xff\xff", PROTOBUF, 400),
        (b"not gzip at all", {**JSON, "Content-Encoding": "gzip"}, 400),
        (gzip.compress(b"{}")[:-6], {**JSON, "Content-Encoding": "gzip"}, 400),
        (gzip.compress(b" " * (17 * 1024 * 1024)), {**JSON, "Content-Encoding": "gzip"}, 413),
        (b"{}", {**JSON, "Content-Encoding": "br"}, 415),
        (b"{}", {**SERVER, "Content-Type": "text/plain"}, 415),
    ],
    ids=["not-json", "empty", "array", "not-a-list", "span-not-object", "bad-protobuf", "bad-gzip", "cut-gzip",
         "gzip-bomb", "brotli", "text"],
)  # fmt: skip
def test_a_body_that_does_not_decode_gets_an_error_in_its_own_encoding_never_a_500(
    api: LiveServer, body: bytes, headers: dict[str, str], status: int
) -> None:
    response = api.post("/v1/traces", data=body, headers=headers)

    assert response.status_code == status, response.text
    if headers is PROTOBUF:  # OTLP/HTTP: a protobuf request's 4xx/5xx body MUST be a protobuf google.rpc.Status
        assert response.headers["Content-Type"] == "application/x-protobuf"
        assert rpc_status(response).message.startswith("invalid_body: not an OTLP ExportTraceServiceRequest")
    else:
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["error"]["message"]


def rpc_status(response: Any) -> RpcStatus:
    status = RpcStatus()
    status.ParseFromString(response.content)
    return status


@pytest.mark.parametrize(
    ("headers", "body", "status", "code", "message"),
    [
        ({"Content-Type": "application/x-protobuf"}, b"", 401, 16, "unauthorized: "),
        ({**ADMIN, "Content-Type": "application/x-protobuf"}, b"", 403, 7, "forbidden: "),
        ({**PROTOBUF, "Content-Encoding": "br"}, b"x", 415, 3, "unsupported_media_type: Content-Encoding 'br'"),
        (PROTOBUF, b"x" * (17 * 1024 * 1024), 413, 3, "payload_too_large: the body is 17825792 bytes"),
    ],
    ids=["no-key", "admin-key", "brotli", "too-large"],
)
def test_every_error_answer_to_a_protobuf_export_is_a_protobuf_status(
    api: LiveServer, headers: dict[str, str], body: bytes, status: int, code: int, message: str
) -> None:
    response = api.post("/v1/traces", data=body, headers=headers)

    assert (response.status_code, response.headers["Content-Type"]) == (status, "application/x-protobuf")
    answer = rpc_status(response)
    assert (answer.code, answer.message[: len(message)]) == (code, message)
    assert response.headers["X-Correlation-Id"]
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_gzip_json_export_is_read(api: LiveServer) -> None:
    span = {**chat(user__id="otel-player-6"), "spanId": "eeeeeeeeeeeeeee1"}
    body = gzip.compress(json.dumps(export(span)).encode())

    response = api.post("/v1/traces", data=body, headers={**JSON, "Content-Encoding": "gzip"})

    assert (response.status_code, response.json()) == (200, {})
    assert requests_of(api, "otel-player-6") == 1


def test_exports_need_the_server_key(api: LiveServer) -> None:
    spans = sdk_spans("otel-player-7")

    assert exporter(api, key="wrong-key").export(spans) is SpanExportResult.FAILURE
    assert exporter(api, key=ADMIN_KEY).export(spans) is SpanExportResult.FAILURE
    assert api.post("/v1/traces", json=export(chat(user__id="otel-player-7"))).status_code == 401
    assert api.post("/v1/traces", json=export(chat(user__id="otel-player-7")), headers=ADMIN).status_code == 403
    assert requests_of(api, "otel-player-7") == 0


def test_protobuf_without_opentelemetry_proto_installed_is_a_clear_415(
    api: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules makes the import fail as if the package were absent; JSON keeps working without it.
    monkeypatch.setitem(sys.modules, "opentelemetry.proto.collector.trace.v1.trace_service_pb2", None)

    response = api.post(
        "/v1/traces", data=encode_spans(sdk_spans("otel-player-8")).SerializeToString(), headers=PROTOBUF
    )

    assert response.status_code == 415
    assert "opentelemetry-proto" in rpc_status(response).message
    assert api.post("/v1/traces", json=export(), headers=SERVER).status_code == 200
