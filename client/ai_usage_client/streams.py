"""Streamed answers: pass every chunk through unchanged, and report the final usage exactly once.

``wrap_stream(stream, on_done)`` wraps an OpenAI (Chat Completions or Responses), Anthropic (Messages) or Gemini
stream, sync or async, or the stream manager an SDK's ``.stream(...)`` helper returns, and calls
``on_done(fields, complete)`` once: when the stream ends (``complete=True``; ``metadata.usage_missing`` when it
reported no usage), or when it is closed, abandoned (garbage-collected) or fails halfway (``complete=False``, with
what was reported so far). Where each provider puts the usage (README, "Token convention"):

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
from collections.abc import Callable
from typing import Any

from .stream_usage import UsageAccumulator, with_stream_usage

__all__ = ["UsageAccumulator", "with_stream_usage", "wrap_stream"]

OnDone = Callable[[dict[str, Any], bool], None]
_log = logging.getLogger("ai_usage_client")


class _Wrapped:
    """What the sync and async wrappers share: the accumulator, and calling ``on_done`` exactly once."""

    _done = True  # until __init__ completes: a wrapper never built (its stream not iterable) has nothing to report

    def __init__(self, stream: Any, iterator: Any, on_done: OnDone, provider: str | None) -> None:
        self._stream = stream
        self._iterator = iterator
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
            if complete and not self._usage.reported:  # else indistinguishable from a free call
                fields["metadata"] = {"usage_missing": True}
        except Exception:
            _log.exception("ai_usage_client: could not read a stream's usage")
            fields, complete = self._usage.named(), False
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
        with contextlib.suppress(Exception):  # interpreter shutdown
            self._finish(False)


class _SyncStream(_Wrapped):
    def __init__(self, stream: Any, on_done: OnDone, provider: str | None) -> None:
        super().__init__(stream, iter(stream), on_done, provider)  # iter() first: a TypeError builds nothing

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
        super().__init__(stream, stream.__aiter__(), on_done, provider)

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


class _Manager:
    """A stream manager (Anthropic's ``messages.stream(...)``, OpenAI's ``chat.completions.stream(...)``), sync
    or async: entering it makes the request and hands back the stream, so that stream is what gets wrapped.

    Leaving the block closes the stream (the manager's own ``__exit__`` does): one not read to its end is
    reported then, incomplete. A manager never entered made no request and reports nothing.
    """

    def __init__(self, manager: Any, on_done: OnDone, provider: str | None) -> None:
        self._manager = manager
        self._on_done = on_done
        self._provider = provider
        self._stream: Any = None

    def _wrap(self, stream: Any) -> Any:
        try:
            self._stream = _wrap(stream, self._on_done, self._provider)
        except Exception:  # a context manager handing back something not iterable: the game gets it, unreported
            _log.exception("ai_usage_client: the stream of a %s is returned unwrapped", type(self._manager).__name__)
            return stream
        return self._stream

    def _left(self) -> None:
        if isinstance(self._stream, _Wrapped):
            self._stream._finish(False)  # nothing when the stream ended already

    def __enter__(self) -> Any:
        return self._wrap(self._manager.__enter__())

    def __exit__(self, *exc: Any) -> Any:
        try:
            return self._manager.__exit__(*exc)
        finally:
            self._left()

    async def __aenter__(self) -> Any:
        return self._wrap(await self._manager.__aenter__())

    async def __aexit__(self, *exc: Any) -> Any:
        try:
            return await self._manager.__aexit__(*exc)
        finally:
            self._left()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._manager, name)


def _wrap(stream: Any, on_done: OnDone, provider: str | None) -> Any:
    if hasattr(stream, "__aiter__") and not hasattr(stream, "__iter__"):
        return _AsyncStream(stream, on_done, provider)
    if not hasattr(stream, "__iter__") and (hasattr(stream, "__enter__") or hasattr(stream, "__aenter__")):
        return _Manager(stream, on_done, provider)
    return _SyncStream(stream, on_done, provider)  # a TypeError for anything not iterable


def wrap_stream(stream: Any, on_done: OnDone, provider: str | None = None) -> Any:
    """Wrap a provider stream; iterate the wrapper instead of the stream (async streams: ``async for``).

    A stream manager (an SDK's ``.stream(...)``) gives a manager whose ``with`` / ``async with`` yields the wrapped
    stream. ``on_done(fields, complete)`` is called once, with the event fields of :func:`usage_from_response`'s
    convention. Iterate the wrapper itself: helpers that read the stream behind its back (Anthropic's
    ``text_stream``, ``get_final_message()``) bypass it, and then only closing the wrapper reports. Raises
    TypeError for something neither iterable nor a stream manager, and then reports nothing.
    """
    return _wrap(stream, on_done, provider)
