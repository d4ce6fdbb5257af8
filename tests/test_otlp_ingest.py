"""OpenTelemetry GenAI spans to usage events (services/otlp_ingest.py), on OTLP/JSON-shaped requests: no server."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest

from models.ai_usage import UsageEvent
from services.otlp_ingest import SYSTEM_USER_ID, OtlpDecodeError, convert_request

TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"
END = 1_795_435_200_000_000_000  # 2026-11-23T12:00:00Z in nanoseconds


def value(item: Any) -> dict[str, Any]:
    if isinstance(item, bool):
        return {"boolValue": item}
    if isinstance(item, int):
        return {"intValue": str(item)}  # int64 is a decimal string in OTLP/JSON
    if isinstance(item, float):
        return {"doubleValue": item}
    return {"stringValue": item}


def attrs(**pairs: Any) -> list[dict[str, Any]]:
    return [{"key": key.replace("__", "."), "value": value(item)} for key, item in pairs.items()]


def chat(**attributes: Any) -> dict[str, Any]:
    """A finished chat span as OTLP/JSON has it: 1.5 s long, ending at END."""
    defaults = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "user.id": "player-1"}
    merged = {**defaults, **{key.replace("__", "."): item for key, item in attributes.items()}}
    return {
        "traceId": TRACE,
        "spanId": SPAN,
        "name": "chat gpt-4o",
        "kind": 3,
        "startTimeUnixNano": str(END - 1_500_000_000),
        "endTimeUnixNano": str(END),
        "attributes": [{"key": key, "value": value(item)} for key, item in merged.items() if item is not None],
    }


def export(*spans: dict[str, Any], resource: dict[str, Any] | None = None) -> dict[str, Any]:
    resource_attributes = attrs(**(resource or {"service__name": "game-backend"}))
    return {
        "resourceSpans": [
            {"resource": {"attributes": resource_attributes}, "scopeSpans": [{"scope": {}, "spans": list(spans)}]}
        ]
    }


def only_event(request: dict[str, Any]) -> dict[str, Any]:
    result = convert_request(request)
    assert result.rejected == [] and len(result.events) == 1, result
    return result.events[0][1]


def test_a_chat_span_maps_to_one_event_in_the_ledgers_convention() -> None:
    event = only_event(
        export(
            chat(
                gen_ai__response__model="gpt-4o-2024-08-06",
                gen_ai__provider__name="openai",
                session__id="session-9",
                ai_usage__task_type="npc_dialogue",
                ai_usage__feature="tavern-banter",
                ai_usage__tenant_id="studio-a",
                ai_usage__character_id="innkeeper",
                gen_ai__usage__input_tokens=1200,
                gen_ai__usage__output_tokens=300,
                gen_ai__usage__cache_read__input_tokens=1000,
                gen_ai__usage__cache_creation__input_tokens=100,
                gen_ai__usage__reasoning__output_tokens=120,
            )
        )
    )

    assert event["request_id"] == f"otel-{TRACE}-{SPAN}"
    assert event["model"] == "gpt-4o-2024-08-06"  # the response model wins over the requested one
    assert (event["provider"], event["user_id"], event["session_id"]) == ("openai", "player-1", "session-9")
    assert (event["task_type"], event["tenant_id"], event["character_id"]) == ("npc_dialogue", "studio-a", "innkeeper")
    # OTel's input_tokens already holds the cache reads and writes, as tokens_input does: nothing is added.
    assert (event["tokens_input"], event["tokens_cached"], event["tokens_cache_write"]) == (1200, 1000, 100)
    assert (event["tokens_output"], event["tokens_reasoning"]) == (300, 120)
    assert event["request_duration_ms"] == 1500
    assert event["timestamp"] == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert event["metadata"] == {
        "otel.operation": "chat",
        "otel.span_name": "chat gpt-4o",
        "service.name": "game-backend",
    }
    if "feature" in UsageEvent.model_fields:
        assert event["feature"] == "tavern-banter"
    assert UsageEvent.model_validate(event).tokens_input == 1200  # a valid ledger event as it stands


def test_the_deprecated_and_alternative_attributes_are_read_when_the_current_ones_are_absent() -> None:
    event = only_event(
        export(
            chat(
                user__id=None,
                enduser__id="player-2",
                gen_ai__system="anthropic",
                gen_ai__conversation__id="conv-1",
                gen_ai__usage__cache_write__input_tokens=40,
                gen_ai__usage__input_tokens=50,
            )
        )
    )

    assert (event["user_id"], event["provider"], event["session_id"]) == ("player-2", "anthropic", "conv-1")
    assert event["model"] == "gpt-4o"
    assert event["tokens_cache_write"] == 40  # the GenAI repository's newer spelling of cache_creation


def test_conventions_provider_names_become_the_price_books_spelling() -> None:
    names = {"aws.bedrock": "bedrock", "gcp.vertex_ai": "vertex_ai", "gcp.gemini": "google", "azure.ai.openai": "azure"}

    for otel, ledger in names.items():
        assert only_event(export(chat(gen_ai__provider__name=otel)))["provider"] == ledger


def test_a_span_that_names_no_user_is_logged_for_the_documented_system_user() -> None:
    assert only_event(export(chat(user__id=None)))["user_id"] == SYSTEM_USER_ID


def test_resource_attributes_apply_to_every_span_and_the_spans_own_win() -> None:
    request = export(chat(ai_usage__tenant_id="own"), resource={"ai_usage.tenant_id": "deployment", "user.id": "r"})

    event = only_event(request)
    assert (event["tenant_id"], event["user_id"]) == ("own", "player-1")


def test_audio_input_counts_its_uncached_tokens_and_audio_output_its_own() -> None:
    event = only_event(
        export(
            chat(
                gen_ai__usage__input_tokens=500,
                gen_ai__usage__audio__input_tokens=300,
                gen_ai__usage__audio__cache_read__input_tokens=100,
                gen_ai__usage__output_tokens=400,
                gen_ai__usage__audio__output_tokens=350,
            )
        )
    )

    assert (event["tokens_audio_input"], event["tokens_audio_output"]) == (200, 350)


@pytest.mark.parametrize("code", [2, "STATUS_CODE_ERROR"])
def test_an_error_status_is_a_failed_event_with_the_status_message(code: Any) -> None:
    span = chat(gen_ai__usage__input_tokens=10)
    span["status"] = {"code": code, "message": "rate limited"}

    event = only_event(export(span))
    assert (event["success"], event["error_message"]) == (False, "rate limited")


def test_an_error_without_a_message_names_its_error_type() -> None:
    span = chat(error__type="timeout")
    span["status"] = {"code": 2}

    assert only_event(export(span))["error_message"] == "error.type timeout"


def test_ids_in_base64_give_the_same_idempotency_key_as_hex() -> None:
    span = chat()
    span["traceId"] = base64.b64encode(bytes.fromhex(TRACE)).decode()
    span["spanId"] = base64.b64encode(bytes.fromhex(SPAN)).decode()

    assert only_event(export(span))["request_id"] == f"otel-{TRACE}-{SPAN}"


def test_spans_without_an_operation_name_and_agent_or_tool_spans_are_ignored_not_rejected() -> None:
    plain = {**chat(), "attributes": attrs(http__method="POST")}
    agent = chat(gen_ai__operation__name="invoke_agent", gen_ai__usage__input_tokens=900)
    tool = chat(gen_ai__operation__name="execute_tool")

    result = convert_request(export(plain, agent, tool))
    assert (result.events, result.rejected, result.ignored) == ([], [], 3)


def test_ai_usage_record_overrides_which_spans_are_logged() -> None:
    remote_agent = chat(gen_ai__operation__name="invoke_agent", ai_usage__record=True)
    unwanted = chat(ai_usage__record=False)

    result = convert_request(export(remote_agent, unwanted))
    assert (len(result.events), result.ignored) == (1, 1)


def test_a_genai_span_with_neither_model_nor_usage_bills_nothing_and_is_ignored() -> None:
    result = convert_request(export(chat(gen_ai__request__model=None, gen_ai__operation__name="retrieval")))

    assert (result.events, result.rejected, result.ignored) == ([], [], 1)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"traceId": "0" * 32}, "traceId: must not be all zeros"),
        ({"traceId": "xyz"}, "traceId: must be 32 hex digits"),
        ({"spanId": None}, "spanId: required"),
        ({"endTimeUnixNano": str(END - 2_000_000_000)}, "endTimeUnixNano: must not be before startTimeUnixNano"),
        ({"startTimeUnixNano": "0"}, "startTimeUnixNano: required"),
        ({"startTimeUnixNano": "\u00b2"}, "startTimeUnixNano: required"),  # a digit to str.isdigit, not to int()
        ({"endTimeUnixNano": "9" * 5000}, "endTimeUnixNano: required"),  # past int()'s digit limit
    ],
)
def test_a_span_with_broken_ids_or_times_is_rejected_with_its_reason(change: dict[str, Any], reason: str) -> None:
    result = convert_request(export({**chat(), **change}))

    assert result.events == [] and len(result.rejected) == 1
    assert result.rejected[0][1].startswith(reason)


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ({"gen_ai__usage__input_tokens": -1}, "gen_ai.usage.input_tokens: must not be negative"),
        ({"gen_ai__usage__output_tokens": "12"}, "gen_ai.usage.output_tokens: must be an integer"),
        ({"gen_ai__usage__output_tokens": 1.5}, "gen_ai.usage.output_tokens: must be an integer"),
        ({"gen_ai__request__model": None, "gen_ai__usage__input_tokens": 5}, "gen_ai.response.model or"),
        ({"user__id": True}, "user.id: must be a string"),
    ],
)
def test_a_span_with_unusable_attributes_is_rejected_naming_the_attribute(
    attributes: dict[str, Any], reason: str
) -> None:
    result = convert_request(export(chat(**attributes)))

    assert result.events == [] and result.rejected[0][1].startswith(reason)


def test_whole_doubles_from_javascript_exporters_are_token_counts() -> None:
    assert only_event(export(chat(gen_ai__usage__input_tokens=12.0)))["tokens_input"] == 12


def test_an_empty_export_and_null_lists_are_nothing_to_log() -> None:
    for request in ({}, {"resourceSpans": None}, {"resourceSpans": [{"scopeSpans": [{"spans": None}]}]}):
        assert convert_request(request).events == []


@pytest.mark.parametrize(
    "request_body",
    [
        [],
        {"resourceSpans": {}},
        {"resourceSpans": ["x"]},
        {"resourceSpans": [{"scopeSpans": "x"}]},
        {"resourceSpans": [{"scopeSpans": [{"spans": [1]}]}]},
        {"resourceSpans": [{"resource": {"attributes": [{"key": 1}]}}]},
        {"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": [{"key": "k", "value": "v"}]}]}]}]},
    ],
)
def test_a_shape_otlp_does_not_have_is_a_decode_error_naming_where(request_body: Any) -> None:
    with pytest.raises(OtlpDecodeError):
        convert_request(request_body)
