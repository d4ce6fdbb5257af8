"""``client.track(...)`` and ``@client.tracked(...)``: time a provider call and record it, or its failure."""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .ids import new_request_id

if TYPE_CHECKING:
    from .client import UsageClient

log = logging.getLogger("ai_usage_client")
_DEFAULTS = ("model", "provider")  # the response's own values win over these labels


class TrackedCall:
    """One timed provider call. ``record(response)`` logs it; leaving the block by an exception logs a failure.

    ``request_id`` is made when the call is tracked (or taken from the labels), so a game may log it or pass
    it on before the call ends.
    """

    def __init__(self, client: UsageClient, labels: dict[str, Any]) -> None:
        self._client = client
        self._labels = dict(labels)
        self.request_id: str = self._labels.pop("request_id", None) or new_request_id()
        self._defaults = {name: self._labels.pop(name) for name in _DEFAULTS if name in self._labels}
        self._start = time.perf_counter()
        self.recorded = False

    def __enter__(self) -> TrackedCall:
        self._start = time.perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if exc is not None:
            self._fail(exc)
        return False  # the game's exception goes on unchanged

    def _fail(self, exc: BaseException) -> None:
        """Record the call as failed by ``exc``, unless it was recorded already; never raises.

        Every exception counts, BaseExceptions included: a cancellation (``asyncio.wait_for`` timing out, a
        player leaving), KeyboardInterrupt or SystemExit may stop a call the provider already served and bills.
        GeneratorExit does not: it is how a generator (or coroutine) holding the block is closed by whoever
        stopped reading it, a way out as normal as leaving the block without ``record()``, which records nothing.
        """
        if self.recorded or isinstance(exc, GeneratorExit):
            return
        self.recorded = True
        labels = {**self._labels, **self._defaults}
        try:
            self._client.failure_event(labels, exc, self.elapsed_ms(), self.request_id)
            return
        except Exception:  # e.g. an exception whose __str__ raises: failure_event cannot write its message
            log.exception("ai_usage_client.track_failed request_id=%s: recorded by the type alone", self.request_id)
        try:
            # failure_event's event, with the one part that cannot fail as the message: the call is still counted.
            event = dict(labels, success=False, error_message=type(exc).__name__, latency_ms=self.elapsed_ms())
            event.setdefault("model", "unknown")
            self._client._record(None, event, {}, self.request_id)
        except Exception:
            log.exception("ai_usage_client.track_failed request_id=%s", self.request_id)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self._start) * 1000

    def record(self, response: object, **overrides: Any) -> str:
        """Record the call's response; ``overrides`` (labels or usage fields) win over the response's."""
        if self.recorded:
            log.warning("ai_usage_client.recorded_twice request_id=%s: the second record is ignored", self.request_id)
            return self.request_id
        self.recorded = True
        labels = dict(self._labels, latency_ms=self.elapsed_ms())
        for name in [name for name in overrides if name in _LABELS]:
            labels[name] = overrides.pop(name)
        return self._client._record(response, labels, overrides, self.request_id, self._defaults)


_LABELS = frozenset(
    {"user_id", "task_type", "session_id", "character_id", "feature", "latency_ms", "tenant_id", "success",
     "error_message", "metadata"}
)  # fmt: skip


def _resolve(labels: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    resolved: dict[str, Any] = {}
    for name, value in labels.items():
        if callable(value):
            try:
                value = value(*args, **kwargs)
            except Exception:  # a label that cannot be computed leaves the field out; the call goes on
                log.exception("ai_usage_client.label_failed label=%s", name)
                value = None
        resolved[name] = value
    return resolved


def _is_coroutine_function(function: Callable[..., Any]) -> bool:
    # inspect sees functions, methods and partials only; an object whose class defines ``async def __call__``
    # is one too. The class is asked, not the object: a class's own async __call__ is not what calling it does.
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        getattr(type(function), "__call__", None)  # noqa: B004 -- the class's method, not callable()
    )


async def _settle(call: TrackedCall, awaitable: Awaitable[Any]) -> Any:
    """Await what a sync callable handed back and record the awaited answer, timed from the call to its end."""
    try:
        response = await awaitable
    except BaseException as exc:
        call._fail(exc)
        raise
    call.record(response)
    return response


def tracked_decorator(
    client: UsageClient, labels: dict[str, Any]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        if _is_coroutine_function(function):

            @functools.wraps(function)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with client.track(**_resolve(labels, args, kwargs)) as call:
                    response = await function(*args, **kwargs)
                    call.record(response)
                return response

            return run_async

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            with client.track(**_resolve(labels, args, kwargs)) as call:
                response = function(*args, **kwargs)
                if inspect.isawaitable(response):
                    # A sync wrapper around an async def (or a callable returning a task): its answer is the
                    # awaited one. Leaving the block here records nothing; _settle records when it is awaited.
                    return _settle(call, response)
                call.record(response)
            return response

        return run

    return decorate
