"""wrap_stream: every chunk passes through unchanged and the final usage is reported exactly once, for streams
the real SDKs read from a local HTTP server answering recorded SSE (tests/data/provider_responses)."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from ai_usage_client import UsageClient
from ai_usage_client.streams import with_stream_usage, wrap_stream
from google.genai import types

from tests.test_client_delivery import service, stored

DATA = Path(__file__).parent / "data" / "provider_responses"
MESSAGES = [{"role": "user", "content": "Greet the traveller."}]


class RecordedServer:
    """Answers every POST with one recorded SSE file, and keeps the JSON bodies it was sent."""

    def __init__(self) -> None:
        self.answer = b""
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                server.requests.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(server.answer)))
                self.end_headers()
                self.wfile.write(server.answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def answers(self, name: str) -> RecordedServer:
        self.answer = (DATA / name).read_bytes()
        return self

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def server() -> Iterator[RecordedServer]:
    recorded = RecordedServer()
    yield recorded
    recorded.close()


class Done:
    """An on_done that remembers every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], bool]] = []

    def __call__(self, fields: dict[str, Any], complete: bool) -> None:
        self.calls.append((fields, complete))


OPENAI_CHAT_USAGE = {
    "model": "gpt-4o-mini-2024-07-18",
    "provider": "openai",
    "tokens_input": 1500,
    "tokens_cached": 1280,
    "tokens_output": 4,
}


def test_openai_chat_stream_asks_for_usage_and_reports_the_last_chunk_once(server: RecordedServer) -> None:
    client = openai.OpenAI(base_url=f"{server.answers('openai_chat_stream.sse').url}/v1", api_key="x")
    done = Done()
    kwargs = with_stream_usage({"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True})
    stream = wrap_stream(client.chat.completions.create(**kwargs), done)
    assert stream.response.status_code == 200  # the SDK stream's own attributes stay reachable
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Welcome, traveller."
    assert server.requests[0]["stream_options"] == {"include_usage": True}
    assert done.calls == [(OPENAI_CHAT_USAGE, True)]
    stream.close()
    del stream
    gc.collect()
    assert len(done.calls) == 1  # closing or dropping a finished stream reports nothing more


def test_openai_chat_stream_abandoned_halfway_reports_what_it_has_flagged(server: RecordedServer) -> None:
    client = openai.OpenAI(base_url=f"{server.answers('openai_chat_stream.sse').url}/v1", api_key="x")
    done = Done()
    stream = wrap_stream(client.chat.completions.create(**with_stream_usage({"model": "gpt-4o-mini",
                         "messages": MESSAGES, "stream": True})), done)  # fmt: skip
    next(stream), next(stream)
    del stream  # the game stops reading and drops it
    gc.collect()
    assert done.calls == [({"model": "gpt-4o-mini-2024-07-18", "provider": "openai"}, False)]


def test_openai_chat_stream_closed_halfway_is_reported_once_incomplete(server: RecordedServer) -> None:
    client = openai.OpenAI(base_url=f"{server.answers('openai_chat_stream.sse').url}/v1", api_key="x")
    done = Done()
    with wrap_stream(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True), done) as s:
        next(s)
    assert done.calls == [({"model": "gpt-4o-mini-2024-07-18", "provider": "openai"}, False)]


def test_openai_chat_stream_helper_is_read_through_its_chunk_events(server: RecordedServer) -> None:
    client = openai.OpenAI(base_url=f"{server.answers('openai_chat_stream.sse').url}/v1", api_key="x")
    done = Done()
    kwargs = with_stream_usage({"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True})
    del kwargs["stream"]  # the helper streams by itself; stream_options is what it needs
    with client.chat.completions.stream(**kwargs) as helper:
        kinds = {event.type for event in wrap_stream(helper, done)}
    assert {"chunk", "content.delta", "content.done"} <= kinds
    assert done.calls == [(OPENAI_CHAT_USAGE, True)]


def test_async_openai_chat_stream_reports_once(server: RecordedServer) -> None:
    async def consume() -> tuple[Done, int]:
        client = openai.AsyncOpenAI(base_url=f"{server.answers('openai_chat_stream.sse').url}/v1", api_key="x")
        done = Done()
        created = await client.chat.completions.create(
            **with_stream_usage({"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True})
        )
        chunks = [chunk async for chunk in wrap_stream(created, done)]
        early = Done()
        halfway = wrap_stream(await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                                                   stream=True), early)  # fmt: skip
        await halfway.__anext__()
        await halfway.aclose()
        assert early.calls == [({"model": "gpt-4o-mini-2024-07-18", "provider": "openai"}, False)]
        return done, len(chunks)

    done, chunks = asyncio.run(consume())
    assert chunks == 5
    assert done.calls == [(OPENAI_CHAT_USAGE, True)]


def test_openai_responses_stream_reports_the_completed_response(server: RecordedServer) -> None:
    client = openai.OpenAI(base_url=f"{server.answers('openai_responses_stream.sse').url}/v1", api_key="x")
    done = Done()
    events = [event.type for event in wrap_stream(client.responses.create(model="gpt-4.1", input="hi", stream=True),
                                                  done)]  # fmt: skip
    assert events == ["response.created", "response.output_text.delta", "response.completed"]
    assert done.calls == [
        ({"model": "gpt-4.1-2025-04-14", "provider": "openai", "tokens_input": 37, "tokens_output": 11}, True)
    ]


ANTHROPIC_USAGE = {
    "model": "claude-opus-4-6",
    "provider": "anthropic",
    "tokens_input": 25 + 3000 + 500,
    "tokens_cached": 3000,
    "tokens_cache_write": 200,
    "tokens_cache_write_1h": 300,
    "tokens_output": 15,  # the last cumulative message_delta: not 1 + 8 + 15, not 8 + 15
    "web_searches": 1,
}


def test_anthropic_stream_takes_the_last_cumulative_delta(server: RecordedServer) -> None:
    client = anthropic.Anthropic(base_url=server.answers("anthropic_stream.sse").url, api_key="x", max_retries=0)
    done = Done()
    stream = wrap_stream(client.messages.create(model="claude-opus-4-6", max_tokens=64, messages=MESSAGES,
                                                stream=True), done)  # fmt: skip
    kinds = [event.type for event in stream]
    assert kinds.count("message_delta") == 2 and kinds[-1] == "message_stop"
    assert done.calls == [(ANTHROPIC_USAGE, True)]


def test_anthropic_stream_helper_is_wrapped_the_same(server: RecordedServer) -> None:
    client = anthropic.Anthropic(base_url=server.answers("anthropic_stream.sse").url, api_key="x", max_retries=0)
    done = Done()
    with client.messages.stream(model="claude-opus-4-6", max_tokens=64, messages=MESSAGES) as helper:
        text = "".join(event.text for event in wrap_stream(helper, done) if event.type == "text")
    assert text == "Well met, stranger."
    assert done.calls == [(ANTHROPIC_USAGE, True)]


def test_anthropic_error_mid_stream_reports_the_input_flagged_and_reraises(server: RecordedServer) -> None:
    client = anthropic.Anthropic(base_url=server.answers("anthropic_stream_overloaded.sse").url, api_key="x",
                                 max_retries=0)  # fmt: skip
    done = Done()
    stream = wrap_stream(client.messages.create(model="claude-opus-4-6", max_tokens=64, messages=MESSAGES,
                                                stream=True), done)  # fmt: skip
    with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
        for _ in stream:
            pass
    assert done.calls == [
        ({"model": "claude-opus-4-6", "provider": "anthropic", "tokens_input": 40, "tokens_output": 1}, False)
    ]


def test_gemini_stream_reports_the_last_chunks_usage() -> None:
    def chunk(text: str, prompt: int, candidates: int) -> types.GenerateContentResponse:
        return types.GenerateContentResponse(
            model_version="gemini-2.5-flash",
            candidates=[types.Candidate(content=types.Content(role="model", parts=[types.Part(text=text)]))],
            usage_metadata=types.GenerateContentResponseUsageMetadata(
                prompt_token_count=prompt, candidates_token_count=candidates, thoughts_token_count=7
            ),
        )

    chunks = [chunk("Hail", 40, 2), chunk(", wanderer", 40, 5), chunk(".", 40, 6)]
    done = Done()
    passed = list(wrap_stream(iter(chunks), done))
    assert all(got is sent for got, sent in zip(passed, chunks, strict=True))  # unchanged, the same objects
    assert done.calls == [
        (
            {"model": "gemini-2.5-flash", "provider": "google", "tokens_input": 40, "tokens_output": 13,
             "tokens_reasoning": 7},
            True,
        )
    ]  # fmt: skip


def test_a_failing_on_done_is_logged_never_raised_into_the_game(caplog: pytest.LogCaptureFixture) -> None:
    def broken(fields: dict[str, Any], complete: bool) -> None:
        raise RuntimeError("ledger client bug")

    chunks = [{"object": "chat.completion.chunk", "model": "gpt-4o", "choices": [], "usage": None}]
    with caplog.at_level(logging.ERROR, logger="ai_usage_client"):
        assert list(wrap_stream(iter(chunks), broken)) == chunks
    assert "on_done failed" in caplog.text


def test_with_stream_usage_adds_include_usage_only_where_the_caller_did_not_decide() -> None:
    asked = {"model": "gpt-4o", "messages": MESSAGES, "stream": True}
    assert with_stream_usage(asked)["stream_options"] == {"include_usage": True}
    assert "stream_options" not in asked  # the caller's arguments are not changed
    kept = with_stream_usage(asked | {"stream_options": {"include_usage": False}})
    assert kept["stream_options"] == {"include_usage": False}
    merged = with_stream_usage(asked | {"stream_options": {"include_obfuscation": False}})
    assert merged["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert with_stream_usage(asked | {"stream_options": openai.NOT_GIVEN})["stream_options"] == {"include_usage": True}
    # OpenAI refuses stream_options on a request that does not stream.
    assert "stream_options" not in with_stream_usage({"model": "gpt-4o", "messages": MESSAGES})


# -- stream managers: an SDK's .stream(...) helper, entered by the game -------------------------------------------


def test_anthropic_stream_manager_is_wrapped_and_reports_when_its_stream_ends(server: RecordedServer) -> None:
    client = anthropic.Anthropic(base_url=server.answers("anthropic_stream.sse").url, api_key="x", max_retries=0)
    done = Done()
    manager = wrap_stream(client.messages.stream(model="claude-opus-4-6", max_tokens=64, messages=MESSAGES), done)
    assert server.requests == []  # the request is made when the manager is entered, as the SDK's own does
    with manager as stream:
        text = "".join(event.text for event in stream if event.type == "text")
        assert stream.get_final_message().usage.output_tokens == 15  # the SDK stream's own helpers stay reachable
    assert text == "Well met, stranger."
    assert done.calls == [(ANTHROPIC_USAGE, True)]

    left = Done()
    with wrap_stream(client.messages.stream(model="claude-opus-4-6", max_tokens=64, messages=MESSAGES), left) as s:
        next(iter(s))  # message_start, then the game leaves the block
    gc.collect()
    assert left.calls == [({"model": "claude-opus-4-6", "provider": "anthropic", "tokens_input": 3525,
                            "tokens_cached": 3000, "tokens_cache_write": 200, "tokens_cache_write_1h": 300,
                            "tokens_output": 1}, False)]  # fmt: skip

    never = Done()
    unused = wrap_stream(client.messages.stream(model="claude-opus-4-6", max_tokens=64, messages=MESSAGES), never)
    del unused  # never entered: no request was made, nothing to report
    gc.collect()
    assert never.calls == [] and len(server.requests) == 2


def test_async_anthropic_stream_manager_is_wrapped_the_same(server: RecordedServer) -> None:
    async def consume() -> tuple[Done, str]:
        client = anthropic.AsyncAnthropic(base_url=server.answers("anthropic_stream.sse").url, api_key="x",
                                          max_retries=0)  # fmt: skip
        done = Done()
        manager = client.messages.stream(model="claude-opus-4-6", max_tokens=64, messages=MESSAGES)
        async with wrap_stream(manager, done) as stream:
            text = "".join([event.text async for event in stream if event.type == "text"])
        return done, text

    done, text = asyncio.run(consume())
    assert text == "Well met, stranger."
    assert done.calls == [(ANTHROPIC_USAGE, True)]


def test_openai_chat_stream_manager_is_wrapped_the_same(server: RecordedServer) -> None:
    client = openai.OpenAI(base_url=f"{server.answers('openai_chat_stream.sse').url}/v1", api_key="x")
    done = Done()
    manager = client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES,
                                             stream_options={"include_usage": True})  # fmt: skip
    with wrap_stream(manager, done) as stream:
        kinds = {event.type for event in stream}
    assert "chunk" in kinds and done.calls == [(OPENAI_CHAT_USAGE, True)]


def test_what_cannot_be_iterated_is_refused_and_reports_nothing() -> None:
    done = Done()
    with pytest.raises(TypeError):
        wrap_stream(object(), done)
    gc.collect()  # the wrapper never built must not report a 0-token call when it is collected
    assert done.calls == []


# -- what a stream reported, or did not ------------------------------------------------------------------------


def sse_without_usage() -> bytes:
    """The recorded Chat stream as OpenAI sends it for include_usage False: no usage chunk."""
    events = (DATA / "openai_chat_stream.sse").read_bytes().split(b"\n\n")
    return b"\n\n".join(event for event in events if b'"usage":{' not in event)


def test_openai_chat_stream_without_a_usage_chunk_is_flagged_usage_missing(server: RecordedServer) -> None:
    server.answer = sse_without_usage()
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x")
    kwargs = with_stream_usage({"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True,
                                "stream_options": {"include_usage": False}})  # fmt: skip
    done = Done()
    assert len(list(wrap_stream(client.chat.completions.create(**kwargs), done))) == 4
    assert server.requests[0]["stream_options"] == {"include_usage": False}  # the caller's choice, kept
    # Complete but with 0 tokens: not a free call, a call whose usage the stream never said.
    assert done.calls == [({"model": "gpt-4o-mini-2024-07-18", "provider": "openai",
                            "metadata": {"usage_missing": True}}, True)]  # fmt: skip


AZURE_FIRST_CHUNK = {"id": "", "object": "chat.completion.chunk", "created": 0, "model": "", "choices": [],
                     "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]}  # fmt: skip


def test_the_model_a_stream_named_is_reported_even_when_its_first_chunk_names_none(server: RecordedServer) -> None:
    # Azure OpenAI's first chunk carries the prompt filter results and an empty model; the next ones name it.
    server.answer = f"data: {json.dumps(AZURE_FIRST_CHUNK)}\n\n".encode() + sse_without_usage()
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x")
    done = Done()
    stream = wrap_stream(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True), done)
    next(stream), next(stream)
    del stream  # the player left after the first token
    gc.collect()
    assert done.calls == [({"model": "gpt-4o-mini-2024-07-18", "provider": "openai"}, False)]


def test_a_usage_that_cannot_be_read_still_reports_the_model_flagged_incomplete(server: RecordedServer) -> None:
    server.answer = (
        (DATA / "openai_chat_stream.sse").read_bytes().replace(b'"prompt_tokens":1500', b'"prompt_tokens":"n/a"')
    )
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x")
    done = Done()
    created = client.chat.completions.create(**with_stream_usage({"model": "gpt-4o-mini", "messages": MESSAGES,
                                                                  "stream": True}))  # fmt: skip
    assert len(list(wrap_stream(created, done))) == 5
    assert done.calls == [({"model": "gpt-4o-mini-2024-07-18"}, False)]  # the ledger refuses an event with no model


def test_a_stream_failing_before_its_first_chunk_reports_no_model_of_its_own() -> None:
    def reset() -> Iterator[Any]:
        raise ConnectionResetError("peer reset")
        yield  # a generator

    done = Done()
    with pytest.raises(ConnectionResetError):
        list(wrap_stream(reset(), done, provider="openai"))
    assert done.calls == [({"provider": "openai"}, False)]  # UsageClient's model= label, or "unknown", fills it


# -- through UsageClient, into a real ledger -------------------------------------------------------------------


def test_usage_client_records_a_manager_once_a_usageless_stream_flagged_and_nothing_for_the_unwrappable(
    server: RecordedServer, tmp_path: Path
) -> None:
    ledger = service(tmp_path / "ledger.db")
    usage = UsageClient.in_process(ledger, spool_path=tmp_path / "spool.db", linger=0.005)
    try:
        provider = anthropic.Anthropic(base_url=server.answers("anthropic_stream.sse").url, api_key="x",
                                       max_retries=0)  # fmt: skip
        manager = provider.messages.stream(model="claude-opus-4-6", max_tokens=64, messages=MESSAGES)
        with usage.wrap_stream(manager, user_id="p1", request_id="manager") as stream:
            for _ in stream:
                pass
        unwrappable = object()
        assert usage.wrap_stream(unwrappable, user_id="p1", model="gpt-4o", request_id="none") is unwrappable
        server.answer = sse_without_usage()
        chat = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x")
        for _ in usage.wrap_stream(chat.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True),
                                   user_id="p1", request_id="no-usage"):  # fmt: skip
            pass
        for _ in usage.wrap_stream(chat.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True),
                                   user_id="p1", request_id="labelled", metadata={"scene": "tavern"}):  # fmt: skip
            pass
        gc.collect()
        assert usage.flush(10)
        events = stored(ledger)
        assert set(events) == {"manager", "no-usage", "labelled"} and usage.spool.dead_count() == 0
        assert (events["manager"].tokens_output, events["manager"].metadata) == (15, {})
        assert (events["no-usage"].tokens_input, events["no-usage"].metadata) == (0, {"usage_missing": True})
        # The game's own metadata and the stream's flag together
        assert events["labelled"].metadata == {"scene": "tavern", "usage_missing": True}
    finally:
        usage.close()
