"""The client's fast paths give exactly what the general ones give: the one-pass reader of common answers
(``extract.fast``) against the provider readers, ``record()``'s inline event against the general merge, the looked-up
request ids and timestamps against formatting, and the prebuilt JSON encoder against ``JSONEncoder.encode``."""

from __future__ import annotations

import itertools
import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ai_usage_client import UsageClient
from ai_usage_client import client as client_module
from ai_usage_client import ids as ids_module
from ai_usage_client.encoding import _encoder, encode
from ai_usage_client.extract import anthropic as anthropic_reader
from ai_usage_client.extract import fast, usage_from_response
from ai_usage_client.extract import openai as openai_reader
from anthropic.types import Message
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion

from tests.test_client_extract_properties import openai_usage

DATA = Path(__file__).parent / "data" / "provider_responses"


def recorded(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


CHAT, MESSAGE = openai_reader.chat_fields, anthropic_reader.message_fields
# (file, SDK type, its general reader, whether the fast path reads the dict form, whether it reads the SDK object)
SHAPES = [
    ("openai_chat_completion.json", ChatCompletion, CHAT, True, True),
    ("openai_chat_audio_reasoning.json", ChatCompletion, CHAT, True, True),
    ("deepseek_chat_completion.json", ChatCompletion, CHAT, True, False),  # SDK: prompt_cache_hit_tokens is extra
    ("openrouter_chat_completion.json", ChatCompletion, CHAT, True, False),  # SDK: provider is an extra
    ("anthropic_message_cache.json", Message, MESSAGE, True, True),
    ("anthropic_message_no_breakdown.json", Message, MESSAGE, True, True),
]


@pytest.mark.parametrize("provider", [None, "groq", " vertex_ai "])
@pytest.mark.parametrize(("name", "sdk_type", "reader", "reads_dict", "reads_sdk"), SHAPES, ids=[s[0] for s in SHAPES])
def test_the_fast_reader_gives_the_general_readers_fields_for_each_recorded_answer(
    name: str, sdk_type: Any, reader: Any, reads_dict: bool, reads_sdk: bool, provider: str | None
) -> None:
    body = recorded(name)
    for response, reads in ((body, reads_dict), (sdk_type.model_validate(body), reads_sdk)):
        stripped = provider.strip() if provider else None
        fields = fast.read(response, stripped)
        assert (fields is not None) == reads, type(response)
        expected = reader(response, stripped)
        assert usage_from_response(response, provider) == expected
        if fields is not None:
            assert fields == expected


def test_a_stream_chunk_with_and_without_usage_reads_alike() -> None:
    body = recorded("openai_chat_completion.json")
    last = {**body, "object": "chat.completion.chunk", "choices": []}
    for chunk in (last, {**last, "usage": None}):
        assert fast.read(chunk, None) == openai_reader.chat_fields(chunk, None)
    assert fast.read({**last, "usage": None}, None) == {"model": "gpt-4o-2024-08-06", "provider": "openai"}


def test_a_class_with_a_property_named_like_a_field_goes_to_the_general_reader() -> None:
    class Routed(ChatCompletion):
        @property
        def provider(self) -> str:  # read through getattr by the general reader: the fast one must not skip it
            return "groq"

    completion = Routed.model_validate(recorded("openai_chat_completion.json"))
    assert fast.read(completion, None) is None
    assert usage_from_response(completion)["provider"] == "openrouter"


count = st.none() | st.integers(0, 3000)


class Model(str):
    """A str subclass: the general readers take it as a str (isinstance), so the fast ones must step aside."""


# Counts the fast path reads, or any value, which it must leave to the general reader (that may refuse it).
odd = count | st.integers(-5, -1) | st.floats(-1, 3000, allow_nan=False) | st.booleans() | st.sampled_from(["", "7"])
eight = st.lists(count, min_size=8, max_size=8) | st.lists(odd, min_size=8, max_size=8)


@settings(max_examples=300, deadline=None)
@given(values=eight, hit=odd, model=st.sampled_from(["gpt-4o", "", None, 5, "llama", Model("gpt-4o")]),
       ident=st.sampled_from(["gen-1", "chatcmpl-1", None, 3]))  # fmt: skip
def test_the_fast_chat_reader_agrees_or_steps_aside_whatever_the_counts(
    values: list[Any], hit: Any, model: Any, ident: Any
) -> None:
    usage = openai_usage(*values, hit)
    body = {"id": ident, "object": "chat.completion", "model": model, "usage": usage}
    agrees_or_steps_aside(body, openai_reader.chat_fields)


@settings(max_examples=300, deadline=None)
@given(values=eight, breakdown=st.booleans(), model=st.sampled_from(["claude", None, Model("claude")]))
def test_the_fast_message_reader_agrees_or_steps_aside_whatever_the_counts(
    values: list[Any], breakdown: bool, model: Any
) -> None:
    uncached, read, created, one_hour, five_minutes, output, thinking, searches = values
    usage: dict[str, Any] = {
        "input_tokens": uncached,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": created,
        "output_tokens": output,
        "output_tokens_details": {"thinking_tokens": thinking},
        "server_tool_use": {"web_search_requests": searches},
    }
    if breakdown:
        usage["cache_creation"] = {"ephemeral_1h_input_tokens": one_hour, "ephemeral_5m_input_tokens": five_minutes}
    body = {"id": "msg_1", "type": "message", "role": "assistant", "model": model, "usage": usage}
    agrees_or_steps_aside(body, anthropic_reader.message_fields)


def agrees_or_steps_aside(body: dict[str, Any], reader: Any) -> None:
    """The fast reader gives the general reader's fields, or None (never an error, never other fields)."""
    fields = fast.read(body, None)
    try:
        expected = reader(body, None)
    except ValueError:  # a count that is no number: the general reader refuses, the fast one must step aside
        assert fields is None
        return
    assert fields is None or fields == expected
    assert usage_from_response(body) == expected


# -- record() and log(): the inline event against the general merge (_record, as track() and log() used) -------
@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> tuple[UsageClient, list[dict[str, Any]]]:
    client = UsageClient.in_process(object())
    events: list[dict[str, Any]] = []
    monkeypatch.setattr(client._sender, "offer", events.append)
    monkeypatch.setattr(client_module, "now_utc", lambda: "2026-11-24T20:04:37.040+00:00")
    return client, events


LABELS: list[dict[str, Any]] = [
    {"user_id": "p1"},
    {"user_id": "p1", "task_type": "npc_dialogue", "session_id": "s", "character_id": "c", "feature": "f",
     "latency_ms": 812.6, "tenant_id": "t", "success": False, "error_message": "late", "metadata": {"zone": 3}},
    {"user_id": "p1", "success": True, "latency_ms": -3.0, "metadata": (("a", 1),), "task_type": None},
]  # fmt: skip
OVERRIDES: list[dict[str, Any]] = [
    {},
    {"model": "gpt-4o-mini", "provider": "azure", "tokens_output": 7},
    {"timestamp": datetime(2026, 11, 24, 12, 0, tzinfo=UTC), "request_duration_ms": 5, "tokens_cached": None},
]
RESPONSES = [
    recorded("openai_chat_completion.json"),
    ChatCompletion.model_validate(recorded("openai_chat_audio_reasoning.json")),
    Message.model_validate(recorded("anthropic_message_cache.json")),
    {"unknown": "shape"},
    None,
]


@pytest.mark.parametrize("overrides", OVERRIDES)
@pytest.mark.parametrize("labels", LABELS)
@pytest.mark.parametrize("response", RESPONSES, ids=lambda r: type(r).__name__)
def test_record_builds_the_event_the_general_merge_builds(
    captured: tuple[UsageClient, list[dict[str, Any]]], response: Any, labels: dict[str, Any], overrides: dict[str, Any]
) -> None:
    client, events = captured
    client.record(response, request_id="r1", **labels, **overrides)
    inline = events[:]
    events.clear()
    full = {name: None for name in LABELS[1]} | {"success": True} | labels  # every label, as record() had them
    client._record(response, full, dict(overrides), "r1")
    assert inline == events
    # Only an unreadable answer with a metadata that is no mapping fails (logged), by both ways alike.
    assert len(inline) == (0 if isinstance(labels.get("metadata"), tuple) and response == {"unknown": "shape"} else 1)


def test_log_builds_the_event_the_general_merge_builds(captured: tuple[UsageClient, list[dict[str, Any]]]) -> None:
    client, events = captured
    for fields in ({"user_id": "p1", "model": "gpt-4o", "tokens_input": 1200}, {**LABELS[1], "model": "m"}):
        client.log(request_id="r2", **fields)
        client._record(None, dict(fields), {}, "r2")
    assert len(events) == 4
    assert events[0::2] == events[1::2]


def test_a_circular_event_is_kept_as_a_dead_letter_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    client = UsageClient.in_process(object())
    metadata: dict[str, Any] = {}
    metadata["self"] = metadata
    with caplog.at_level(logging.WARNING, logger="ai_usage_client"):
        assert client.record(None, user_id="p1", model="m", metadata=metadata, request_id="r3") == "r3"
    assert "rejected request_id=r3" in caplog.text and "Circular reference detected" in caplog.text
    stats = client.stats()
    assert (stats.queued, stats.rejected, stats.dropped) == (1, 1, 0)  # kept for the operator, never lost
    client.close(1)


# -- ids, timestamps, JSON ----------------------------------------------------------------------------------------
def test_request_ids_are_the_prefix_and_the_counter_in_sixteen_hex_digits_across_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = ids_module._Ids()
    for start in (0, 250, 2**40 - 3, 2**64 - 300):
        monkeypatch.setattr(ids, "counter", itertools.count(start))
        assert [ids.next() for _ in range(300)] == [f"{ids.prefix}{n:016x}" for n in range(start, start + 300)]


def test_timestamps_end_in_the_formatted_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    for nanos in (1795550000_000_000_000, 1795550000_000_999_999, 1795550000_500_000_000, 1795550000_999_999_999,
                  1795550001_042_000_001, 1795550060_001_000_000):  # fmt: skip
        monkeypatch.setattr(ids_module.time, "time_ns", lambda nanos=nanos: nanos)
        moment = datetime.fromtimestamp(nanos // 1000 / 1e6, UTC)  # microseconds: exact in a float
        assert ids_module.now_utc() == moment.isoformat(timespec="milliseconds")


@pytest.mark.parametrize(
    "event",
    [
        {"request_id": "r", "model": "gpt-4o", "tokens_input": 1200, "metadata": {"zone": [1, 2.5, None, True]}},
        {"request_id": "r", "user_id": 'é"\\\n\u2028', "metadata": {"nested": {"deep": {}}}},
        {"request_id": "r", "latency": float("nan")},
        {"request_id": "r", "metadata": {"thing": object()}},
    ],
)
def test_the_prebuilt_encoder_writes_and_refuses_as_json_encoder_encode(event: dict[str, Any]) -> None:
    try:
        expected: Any = _encoder.encode(event)
    except (TypeError, ValueError) as exc:
        expected = (type(exc), str(exc))
    try:
        got: Any = encode(event)
    except (TypeError, ValueError) as exc:
        got = (type(exc), str(exc))
    assert got == expected


def test_queued_counts_every_event_from_many_threads_and_reading_it_changes_nothing(
    captured: tuple[UsageClient, list[dict[str, Any]]],
) -> None:
    client, events = captured

    def game_thread(player: int) -> None:
        for _ in range(500):
            client.log(user_id=f"p{player}", model="m")
            client.stats()  # a read between events is no event

    threads = [threading.Thread(target=game_thread, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.stats().queued == client.stats().queued == len(events) == 2000
