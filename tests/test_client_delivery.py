"""``ai_usage_client.UsageClient`` delivering to a real ledger: HTTP (the WSGI app on a thread) and in-process.

Also the delivery rules against a stub ledger that answers what a test needs (a batch refused whole, 429 with
Retry-After): a refused batch is split to find its bad events, a Retry-After is honoured.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from ai_usage_client import UsageClient
from ai_usage_client import client as client_module
from ai_usage_client.ids import new_request_id, now_utc
from ai_usage_client.sender import Sender
from ai_usage_client.transport import Delivered
from ai_usage_client.transport import _all_acknowledged as all_acknowledged

from functions.http_api import ApiApp, AuthConfig
from models.ai_usage import MAX_ERROR_MESSAGE_CHARS
from services.settings import Settings
from services.store.sqlite_store import SQLiteUsageStore
from services.usage_tracking_service import UsageTrackingService
from tests.http_harness import SERVER_KEY, LiveServer, price_book

CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-2024-08-06",
    "choices": [],
    "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "prompt_tokens_details": {"cached_tokens": 800}},
}
FAST = {"linger": 0.005, "backoff_base": 0.01, "backoff_cap": 0.05}


def service(db_path: Path) -> UsageTrackingService:
    # The real clock: the client stamps events with the time now, which the ledger checks against its own.
    return UsageTrackingService(SQLiteUsageStore(db_path), price_book(), settings=Settings(db_path=db_path))


def stored(svc: UsageTrackingService) -> dict[str, Any]:
    return {event.request_id: event for event in svc.iter_events()}


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[tuple[LiveServer, UsageTrackingService]]:
    svc = service(tmp_path / "ledger.db")
    server = LiveServer(ApiApp(service=svc, auth=AuthConfig(api_key=SERVER_KEY)), adapter="wsgi")
    try:
        yield server, svc
    finally:
        server.close()


@pytest.fixture(params=["http", "in_process"])
def client_and_service(
    request: pytest.FixtureRequest, tmp_path: Path, ledger: tuple[LiveServer, UsageTrackingService]
) -> Iterator[tuple[UsageClient, UsageTrackingService]]:
    server, svc = ledger
    if request.param == "http":
        client = UsageClient(server.url, SERVER_KEY, spool_path=tmp_path / "spool.db", **FAST)
    else:
        client = UsageClient.in_process(svc, spool_path=tmp_path / "spool.db", **FAST)
    yield client, svc
    client.close()


def test_record_stores_the_response_usage_once_with_its_labels(
    client_and_service: tuple[UsageClient, UsageTrackingService],
) -> None:
    client, svc = client_and_service
    request_id = client.record(
        CHAT, user_id="player-42", task_type="npc_dialogue", session_id="sess-7", character_id="innkeeper",
        feature="quest_board", latency_ms=930.4, metadata={"scene": "tavern"},
    )  # fmt: skip
    logged = client.log(user_id="player-42", model="gpt-4o", tokens_input=10, tokens_output=5, latency_ms=12)

    assert client.flush(10)
    events = stored(svc)
    assert set(events) == {request_id, logged}
    event = events[request_id]
    assert (event.user_id, event.model, event.task_type.value) == ("player-42", "gpt-4o-2024-08-06", "npc_dialogue")
    assert (event.tokens_input, event.tokens_output, event.tokens_cached) == (1200, 300, 800)
    assert (event.session_id, event.character_id, event.request_duration_ms) == ("sess-7", "innkeeper", 930)
    assert event.metadata == {"scene": "tavern"} and event.success
    assert events[logged].request_duration_ms == 12
    assert client.stats().queued == 2 and client.stats().sent == 2 and client.stats().dropped == 0


def test_record_returns_at_once_and_reuses_a_given_request_id_as_a_duplicate(
    client_and_service: tuple[UsageClient, UsageTrackingService],
) -> None:
    client, svc = client_and_service
    assert client.record(CHAT, user_id="p1", request_id="req-8f3a") == "req-8f3a"
    assert client.flush(10)
    client.record(CHAT, user_id="p1", request_id="req-8f3a", timestamp=stored(svc)["req-8f3a"].timestamp)
    assert client.flush(10)
    stats = client.stats()
    assert (stats.sent, stats.duplicates, len(stored(svc))) == (2, 1, 1)


def test_track_times_the_call_and_records_its_response(
    client_and_service: tuple[UsageClient, UsageTrackingService],
) -> None:
    client, svc = client_and_service
    with client.track(user_id="p1", task_type="combat_narration", model="gpt-4o") as call:
        call.record(CHAT)
    assert client.flush(10)
    event = stored(svc)[call.request_id]
    assert event.model == "gpt-4o-2024-08-06"  # the response's model wins over the label
    assert event.request_duration_ms is not None and event.tokens_input == 1200


def test_track_records_a_failure_with_zero_tokens_and_reraises_the_same_exception(
    client_and_service: tuple[UsageClient, UsageTrackingService],
) -> None:
    client, svc = client_and_service
    raised = TimeoutError("provider timed out " + "x" * 3000)
    with pytest.raises(TimeoutError) as caught, client.track(user_id="p1", model="gpt-4o", provider="openai") as call:
        raise raised
    assert caught.value is raised
    assert client.flush(10)
    event = stored(svc)[call.request_id]
    assert not event.success and event.tokens_input == 0 and event.tokens_output == 0
    assert event.error_message is not None and event.error_message.startswith("TimeoutError: provider timed out")
    assert len(event.error_message) == MAX_ERROR_MESSAGE_CHARS == client_module.MAX_ERROR_MESSAGE_CHARS
    assert (event.model, event.provider) == ("gpt-4o", "openai")


def test_tracked_decorator_records_sync_and_async_functions_with_labels_from_arguments(
    client_and_service: tuple[UsageClient, UsageTrackingService],
) -> None:
    client, svc = client_and_service

    @client.tracked(user_id=lambda player, line: player, task_type="npc_dialogue")
    def speak(player: str, line: str) -> dict[str, Any]:
        return CHAT

    @client.tracked(user_id=lambda player: player, model="gpt-4o")
    async def fail(player: str) -> dict[str, Any]:
        raise ValueError("refused by the provider")

    assert speak("player-7", "hello") is CHAT
    with pytest.raises(ValueError, match="refused"):
        asyncio.run(fail("player-8"))
    assert client.flush(10)
    events = sorted(stored(svc).values(), key=lambda e: e.user_id)
    outcomes = [(e.user_id, e.success, e.tokens_input) for e in events]
    assert outcomes == [("player-7", True, 1200), ("player-8", False, 0)]


def chunks() -> Iterator[dict[str, Any]]:
    for text in ("Hel", "lo"):
        yield {"object": "chat.completion.chunk", "model": "gpt-4o", "choices": [{"delta": {"content": text}}]}
    yield {"object": "chat.completion.chunk", "model": "gpt-4o", "choices": [], "usage": CHAT["usage"]}


def test_wrap_stream_passes_chunks_through_and_records_once_flagging_an_abandoned_stream(
    client_and_service: tuple[UsageClient, UsageTrackingService],
) -> None:
    client, svc = client_and_service
    whole = list(client.wrap_stream(chunks(), user_id="p1", request_id="whole"))
    half = client.wrap_stream(chunks(), user_id="p2", model="gpt-4o", request_id="half")
    first = next(half)
    half.close()
    assert whole == list(chunks()) and first == next(chunks())
    assert client.flush(10)
    events = stored(svc)
    assert (events["whole"].tokens_input, events["whole"].metadata) == (1200, {})
    assert events["half"].metadata == {"stream_incomplete": True} and events["half"].tokens_input == 0


def test_invalid_events_become_dead_letters_and_the_valid_ones_are_stored(
    client_and_service: tuple[UsageClient, UsageTrackingService], caplog: pytest.LogCaptureFixture
) -> None:
    client, svc = client_and_service
    good = client.log(user_id="p1", model="gpt-4o", tokens_input=10)
    bad = client.log(user_id="p1", model="gpt-4o", tokens_input=-1, character_id="smith")
    with caplog.at_level(logging.WARNING, logger="ai_usage_client"):
        assert client.flush(10)
    assert set(stored(svc)) == {good}
    [letter] = client.spool.dead_letters()
    assert (letter.request_id, letter.status, letter.event["character_id"]) == (bad, "rejected", "smith")
    assert [error["field"] for error in letter.errors] == ["tokens_input"]
    assert client.stats().rejected == 1 and client.stats().spooled == 0
    logged = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert bad in logged[0] and "smith" in logged[0] and SERVER_KEY not in caplog.text


def test_record_never_raises_into_the_game(
    client_and_service: tuple[UsageClient, UsageTrackingService],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, svc = client_and_service
    with caplog.at_level(logging.WARNING, logger="ai_usage_client"):
        unknown = client.record(object(), user_id="p1", model="gpt-4o")  # usage cannot be read: flagged
        not_json = client.record(CHAT, user_id="p1", metadata={"player": object()})  # dead letter, not a crash
        label = client.tracked(user_id=lambda: 1 / 0, model="gpt-4o")(lambda: CHAT)()  # label fails: logged
        monkeypatch.setattr(client_module, "_usage_from_response", lambda *a: 1 / 0)  # a client bug
        broken = client.record(CHAT, user_id="p1", model="gpt-4o")
        monkeypatch.setattr(Sender, "offer", lambda *a: 1 / 0)  # a bug past extraction
        lost = client.record(CHAT, user_id="p1")
        monkeypatch.undo()
        assert client.flush(10)
        client.close()
        after_close = client.record(CHAT, user_id="p1")  # kept in the spool for the next client
    assert all(isinstance(rid, str) for rid in (unknown, not_json, broken, lost, after_close)) and label is CHAT
    assert stored(svc)[unknown].metadata == {"usage_unrecognised": "object"}
    assert stored(svc)[broken].metadata == {"usage_unrecognised": "dict"}
    assert "ZeroDivisionError" in caplog.text and "usage_failed" in caplog.text and "record_failed" in caplog.text
    assert not_json in {letter.request_id for letter in client.spool.dead_letters()}
    assert [row.request_id for row in client.spool.oldest(10)] == [after_close]


# -- a stub ledger -------------------------------------------------------------------------------------------------
Answer = tuple[int, dict[str, str], dict[str, Any]]


class StubLedger:
    """``POST /v1/usage/batch`` answered by ``answer(events)``; every batch it received is kept in ``batches``."""

    def __init__(self, answer: Callable[[list[dict[str, Any]]], Answer]) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.answer = answer
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                events = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["events"]
                stub.batches.append(events)
                status, headers, body = stub.answer(events)
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(data))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def all_stored(events: list[dict[str, Any]]) -> Answer:
    return 200, {}, {"results": [{"index": i, "status": "stored", "errors": []} for i in range(len(events))]}


def test_a_batch_refused_whole_is_split_until_the_bad_events_are_found(tmp_path: Path) -> None:
    def refuse_poison(events: list[dict[str, Any]]) -> Answer:
        if any(event.get("character_id") == "poison" for event in events):
            return 422, {}, {"error": {"code": "validation_failed", "fields": [{"field": "x", "message": "bad"}]}}
        return all_stored(events)

    stub = StubLedger(refuse_poison)
    client = UsageClient(stub.url, "key", spool_path=tmp_path / "spool.db", linger=1.0)
    try:
        ids = [client.log(user_id="p", model="m", character_id="poison" if i in (2, 5) else None) for i in range(8)]
        assert client.flush(10)
        assert {letter.request_id for letter in client.spool.dead_letters()} == {ids[2], ids[5]}
        stats = client.stats()
        assert (stats.sent, stats.rejected, stats.spooled) == (6, 2, 0)
        delivered = [e["request_id"] for batch in stub.batches[1:] for e in batch if e.get("character_id") is None]
        assert sorted(set(delivered)) == sorted(set(ids) - {ids[2], ids[5]})
    finally:
        client.close()
        stub.close()


def test_a_429_is_spooled_and_not_retried_before_its_retry_after(tmp_path: Path) -> None:
    stub = StubLedger(lambda events: (429, {"Retry-After": "120"}, {"error": {"code": "rate_limited"}}))
    client = UsageClient(stub.url, "key", spool_path=tmp_path / "spool.db", **FAST)
    try:
        client.log(user_id="p", model="m")
        assert client.flush(10)
        client.log(user_id="p", model="m")  # backing off for 120 s: straight to the spool, the ledger not asked
        assert client.flush(10)
        assert len(stub.batches) == 1
        assert client.stats().spooled == 2 and client.spool.pending_count() == 2
        stub.answer = all_stored
        assert client.flush(10, replay=True)  # replay=True tries at once, back-off or not
        assert client.stats().replayed == 2 and client.spool.pending_count() == 0
    finally:
        client.close()
        stub.close()


def test_an_all_stored_answer_is_read_from_its_counts_and_anything_else_in_full(
    ledger: tuple[LiveServer, UsageTrackingService],
) -> None:
    server, _ = ledger
    headers = {"Authorization": f"Bearer {SERVER_KEY}"}
    events = [{"request_id": f"r{i}", "user_id": "p1", "model": "gpt-4o", "tokens_input": 5} for i in range(3)]
    first = server.post("/v1/usage/batch", json={"events": events}, headers=headers).content
    again = server.post("/v1/usage/batch", json={"events": events[:2]}, headers=headers).content
    mixed = server.post("/v1/usage/batch", json={"events": [*events[:1], {"user_id": ""}]}, headers=headers).content
    assert all_acknowledged(first, 3) == Delivered([("stored", [])] * 3)  # the ledger's own answer, read fast
    assert all_acknowledged(again, 2) == Delivered([("duplicate", [])] * 2)
    assert all_acknowledged(mixed, 2) is None  # a rejection: the results are read one by one


def test_labels_are_sent_only_when_given(tmp_path: Path) -> None:
    # A ledger without a field refuses it as unknown, so a label left out (feature=None) is not sent at all.
    stub = StubLedger(all_stored)
    client = UsageClient(stub.url, "key", spool_path=tmp_path / "spool.db", linger=1.0)
    try:
        client.record(CHAT, user_id="p1", feature="quest_board", session_id="s1")
        client.record(CHAT, user_id="p1")
        assert client.flush(10)
    finally:
        client.close()
        stub.close()
    [[labelled, bare]] = stub.batches
    assert (labelled["feature"], labelled["session_id"]) == ("quest_board", "s1")
    assert not {"feature", "session_id", "character_id", "metadata", "success"} & set(bare)


def test_event_timestamps_are_utc_to_the_millisecond() -> None:
    before = datetime.now(UTC)
    stamp = now_utc()
    after = datetime.now(UTC)
    moment = datetime.fromisoformat(stamp)
    assert moment.utcoffset() == timedelta(0) and len(stamp) == len("2026-11-24T20:04:37.040+00:00")
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= moment <= after


def test_request_ids_are_unique_and_a_forked_child_draws_its_own() -> None:
    ids = {new_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000 and all(len(rid) == 32 and int(rid, 16) >= 0 for rid in ids)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child process)
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.waitpid(child, 0)
    in_child = os.read(read, 64).decode()
    assert in_child not in ids and in_child[:16] != new_request_id()[:16]  # another process, another prefix
