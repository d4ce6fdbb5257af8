"""``client.track(...)`` and ``@client.tracked(...)``: time a provider call and record it, or its failure."""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable
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
        if isinstance(exc, Exception) and not self.recorded:
            try:
                labels = {**self._labels, **self._defaults}
                self._client.failure_event(labels, exc, self.elapsed_ms(), self.request_id)
            except Exception:
                log.exception("ai_usage_client.track_failed request_id=%s", self.request_id)
        return False  # the game's exception goes on unchanged

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


def tracked_decorator(
    client: UsageClient, labels: dict[str, Any]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(function):

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
                call.record(response)
            return response

        return run

    return decorate
