"""Streamed answers: pass every chunk through unchanged, and report the final usage exactly once.

``wrap_stream(stream, on_done)`` wraps an OpenAI (Chat Completions or Responses), Anthropic (Messages) or Gemini
stream, sync or async, and calls ``on_done(fields, complete)`` once: when the stream ends (``complete=True``), or
when it is closed, abandoned (garbage-collected) or fails halfway (``complete=False``, with what was reported so
far). Where each provider puts the usage (README, "Token convention"):

- OpenAI Chat Completions: only in the last chunk, and only when the request had
  ``stream_options={"include_usage": True}``; :func:`with_stream_usage` adds it to the request's arguments.
  (DeepSeek and OpenRouter send the same last chunk.) The SDK's ``chat.completions.stream()`` helper is read
  through its ``chunk`` events.
- OpenAI Responses: the ``response`` of ``response.completed`` (or ``.incomplete`` / ``.failed``).
- Anthropic: ``message_start`` carries the input usage; every ``message_delta`` carries *cumulative* counts, so
  the last one is taken, never added to ``message_start``'s (the SDK's own accumulator does the same).
- Gemini: the last chunk's ``usage_metadata``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from .extract import usage_from_response
from .extract._common import get, get2
from .extract.anthropic import PROVIDER as ANTHROPIC
from .extract.anthropic import AnthropicUsage

__all__ = ["UsageAccumulator", "with_stream_usage", "wrap_stream"]

OnDone = Callable[[dict[str, Any], bool], None]
_log = logging.getLogger("ai_usage_client")


def with_stream_usage(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of Chat Completions arguments that asks OpenAI for the usage of a stream.

    ``client.chat.completions.create(**with_stream_usage(kwargs))``: when ``stream=True`` and the caller did not
    set ``stream_options["include_usage"]``, it is set to True (other ``stream_options`` are kept); a caller's
    own ``include_usage`` (even False) is kept as given. Without ``stream=True`` nothing is added, because OpenAI
    refuses ``stream_options`` on a request that does not stream. The Responses API always reports usage and
    takes no such option.
    """
    out = dict(kwargs)
    if out.get("stream") is not True:
        return out
    options = out.get("stream_options")
    if isinstance(options, Mapping):
        if "include_usage" not in options:
            out["stream_options"] = {**options, "include_usage": True}
    elif not options:  # absent, None, or the SDK's NOT_GIVEN / omit sentinels (falsy)
        out["stream_options"] = {"include_usage": True}
    return out


class UsageAccumulator:
    """Keeps what a stream's chunks say about usage; converts it once, in :meth:`fields`.

    Per chunk it only keeps a reference (or, for Anthropic, a few ints): the conversion runs once at the end.
    """

    __slots__ = ("_anthropic", "_last", "_model", "_provider", "_seen", "add")

    def __init__(self, provider: str | None = None) -> None:
        self._provider = provider
        self._last: Any = None  # the chunk (or Responses' response) whose usage is the final one so far
        self._seen: Any = None  # the first such object, usage or not: it still names the model and provider
        self._model: Any = None  # Anthropic's, from message_start
        self._anthropic: AnthropicUsage | None = None
        self.add: Callable[[Any], None] = self._first

    def _first(self, chunk: Any) -> None:
        """Learn the stream's provider from its first chunk that shows it, then read every chunk with that one."""
        if get(chunk, "object") == "chat.completion.chunk":
            self.add = self._openai_chat
        else:
            kind = get(chunk, "type")
            if kind == "chunk":  # the SDK's chat.completions.stream() helper: each raw chunk is an event's .chunk
                self.add = self._openai_chat_helper
            elif isinstance(kind, str) and kind.startswith("response."):
                self.add = self._openai_responses
            elif isinstance(kind, str) and kind.startswith(("message_", "content_block_")):
                self.add = self._anthropic_event
            elif get2(chunk, "usage_metadata", "usageMetadata") is not None or get(chunk, "candidates") is not None:
                self.add = self._gemini
            else:
                return  # a ping or an unknown event: look again at the next chunk
        self.add(chunk)

    def _openai_chat(self, chunk: Any) -> None:
        if get(chunk, "usage") is not None:
            self._last = chunk
        elif self._seen is None:
            self._seen = chunk

    def _openai_chat_helper(self, event: Any) -> None:
        if get(event, "type") == "chunk":
            self._openai_chat(get(event, "chunk"))

    def _openai_responses(self, event: Any) -> None:
        response = get(event, "response")
        if response is not None:
            if get(response, "usage") is not None:
                self._last = response
            elif self._seen is None:
                self._seen = response

    def _anthropic_event(self, event: Any) -> None:
        kind = get(event, "type")
        if kind == "message_start":
            message = get(event, "message")
            self._model = get(message, "model")
            self._anthropic = AnthropicUsage.read(get(message, "usage"))
        elif kind == "message_delta":
            if self._anthropic is None:
                self._anthropic = AnthropicUsage()
            self._anthropic.update(get(event, "usage"))  # cumulative: overwrite, never add

    def _gemini(self, chunk: Any) -> None:
        if get2(chunk, "usage_metadata", "usageMetadata") is not None:
            self._last = chunk
        elif self._seen is None:
            self._seen = chunk

    def fields(self) -> dict[str, Any]:
        """The event fields reported so far (model and provider alone when no usage arrived)."""
        if self._anthropic is not None:
            fields: dict[str, Any] = {}
            if isinstance(self._model, str) and self._model:
                fields["model"] = self._model
            fields["provider"] = self._provider or ANTHROPIC
            return self._anthropic.fields(fields)
        source = self._last if self._last is not None else self._seen
        if source is not None:
            return usage_from_response(source, self._provider)
        return {"provider": self._provider} if self._provider else {}


class _Wrapped:
    """What the sync and async wrappers share: the accumulator, and calling ``on_done`` exactly once."""

    def __init__(self, stream: Any, on_done: OnDone, provider: str | None) -> None:
        self._stream = stream
        self._on_done = on_done
        self._usage = UsageAccumulator(provider)
        self._done = False

    def _add(self, chunk: Any) -> None:
        try:
            self._usage.add(chunk)
        except Exception:  # a chunk the client misreads must never break the game's stream
            _log.exception("ai_usage_client: could not read usage from a stream chunk")

    def _finish(self, complete: bool) -> None:
        if self._done:
            return
        self._done = True
        try:
            fields = self._usage.fields()
        except Exception:
            _log.exception("ai_usage_client: could not read a stream's usage")
            fields, complete = {}, False
        try:
            self._on_done(fields, complete)
        except Exception:  # never raise into the game's code (issue 12, point 3)
            _log.exception("ai_usage_client: on_done failed for a stream")

    def __getattr__(self, name: str) -> Any:
        # Anything else (``response``, ``get_final_message``...) is the stream's own; the wrapper's own private
        # names never are (a half-built wrapper must not recurse looking for ``_stream``).
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._stream, name)

    def __del__(self) -> None:
        # Abandoned: dropped without being read to the end or closed.
        with contextlib.suppress(Exception):  # a half-built wrapper, or interpreter shutdown
            self._finish(False)


class _SyncStream(_Wrapped):
    def __init__(self, stream: Any, on_done: OnDone, provider: str | None) -> None:
        super().__init__(stream, on_done, provider)
        self._iterator = iter(stream)

    def __iter__(self) -> _SyncStream:
        return self

    def __next__(self) -> Any:
        try:
            chunk = next(self._iterator)
        except StopIteration:
            self._finish(True)
            raise
        except BaseException:
            self._finish(False)
            raise
        self._add(chunk)
        return chunk

    def close(self) -> None:
        try:
            close = getattr(self._stream, "close", None)
            if close is not None:
                close()
        finally:
            self._finish(False)

    def __enter__(self) -> _SyncStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _AsyncStream(_Wrapped):
    def __init__(self, stream: Any, on_done: OnDone, provider: str | None) -> None:
        super().__init__(stream, on_done, provider)
        self._iterator = stream.__aiter__()

    def __aiter__(self) -> _AsyncStream:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._iterator.__anext__()
        except StopAsyncIteration:
            self._finish(True)
            raise
        except BaseException:  # cancelled included
            self._finish(False)
            raise
        self._add(chunk)
        return chunk

    async def close(self) -> None:
        try:
            close = getattr(self._stream, "close", None) or getattr(self._stream, "aclose", None)
            if close is not None:
                result = close()
                if hasattr(result, "__await__"):
                    await result
        finally:
            self._finish(False)

    aclose = close

    async def __aenter__(self) -> _AsyncStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def wrap_stream(stream: Any, on_done: OnDone, provider: str | None = None) -> Any:
    """Wrap a provider stream; iterate the wrapper instead of the stream (async streams: ``async for``).

    ``on_done(fields, complete)`` is called once, with the event fields of :func:`usage_from_response`'s
    convention. Iterate the wrapper itself: helpers that read the stream behind its back (Anthropic's
    ``text_stream``, ``get_final_message()``) bypass it, and then only closing the wrapper reports.
    """
    if hasattr(stream, "__aiter__") and not hasattr(stream, "__iter__"):
        return _AsyncStream(stream, on_done, provider)
    return _SyncStream(stream, on_done, provider)
