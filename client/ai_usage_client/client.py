"""``UsageClient``: one line per AI call in the game backend, delivered off the hot path, never lost.

``record``/``log`` build the event (a ``request_id`` made once, the time in UTC), append it to an in-memory
queue and return its ``request_id``; a background thread (``sender.Sender``) delivers it. Nothing here raises
into the game once the client is built: a failure of the client is logged on ``logging.getLogger(
"ai_usage_client")`` and the call goes on.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from .ids import new_request_id, now_utc
from .lifecycle import ClientLifecycle
from .tracking import TrackedCall, tracked_decorator

log = logging.getLogger("ai_usage_client")

MAX_ERROR_MESSAGE_CHARS = 2000  # the ledger's bound on error_message (models.ai_usage.MAX_ERROR_MESSAGE_CHARS)
UNKNOWN_MODEL = "unknown"  # a call whose model is not known (it failed first, or its answer could not be read)

_usage_from_response: Callable[[object, str | None], dict[str, Any]] | None = None


def usage_of(response: object, provider: str | None) -> dict[str, Any]:
    """The usage fields of a provider response (``ai_usage_client.extract``, imported on first use)."""
    global _usage_from_response
    if _usage_from_response is None:
        from .extract import usage_from_response

        _usage_from_response = usage_from_response
    return _usage_from_response(response, provider)


def _load_read_common(response: object, provider: str | None) -> dict[str, Any] | None:
    global _read_common
    from .extract.fast import read

    _read_common = read
    return read(response, provider)


# ``extract.fast.read`` once imported: the common answers, read without usage_of's two calls in between.
_read_common: Callable[[object, str | None], dict[str, Any] | None] = _load_read_common


class UsageClient(ClientLifecycle):
    """Records AI calls in the ledger.

    ``UsageClient(base_url, api_key, spool_path=...)`` sends to ``POST {base_url}/v1/usage/batch`` with the
    server key; ``UsageClient.in_process(service)`` calls a ``UsageTrackingService`` in this process.
    ``spool_path`` is the SQLite file (created 0600) keeping events the ledger has not acknowledged and the
    dead letters it refused; a new client on the same file replays what an earlier one left, oldest first.
    """

    # -- recording ---------------------------------------------------------------------------------------------
    def record(
        self,
        response: object,
        *,
        user_id: str,
        task_type: str | None = None,
        session_id: str | None = None,
        character_id: str | None = None,
        feature: str | None = None,
        latency_ms: float | None = None,
        request_id: str | None = None,
        tenant_id: str | None = None,
        success: bool = True,
        error_message: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **usage_overrides: Any,
    ) -> str:
        """Record one AI call from the provider's response; returns its ``request_id`` at once.

        The usage (model, provider, token counts...) comes from ``response`` (an SDK object or its dict form);
        ``usage_overrides`` (``model=``, ``tokens_input=``...) win over what the response says.
        """
        # The hot path: the event is built here in one dict, usage then labels then overrides (later ones win),
        # a None being "not given" as everywhere in the event; _emit's general merge does the same in three loops.
        request_id = request_id or new_request_id()
        try:
            event: dict[str, Any] = {"request_id": request_id}
            if response is not None:
                usage = None
                if not usage_overrides:  # else a provider= may need stripping: usage_of does that
                    try:
                        usage = _read_common(response, None)
                    except Exception:  # a bug in the fast path: logged, and the general reader decides
                        log.exception("ai_usage_client.fast_path_failed type=%s", type(response).__name__)
                if usage is None:
                    usage = self._usage(response, usage_overrides.get("provider"))
                if usage is None:
                    metadata = _flag_unrecognised(metadata, response)
                    event["model"] = _model_of(response)  # a model= given wins, merged below
                else:
                    event.update(usage)  # the extractors never put a None
            if user_id is not None:
                event["user_id"] = user_id
            if task_type is not None:
                event["task_type"] = task_type
            if session_id is not None:
                event["session_id"] = session_id
            if character_id is not None:
                event["character_id"] = character_id
            if feature is not None:
                event["feature"] = feature
            if tenant_id is not None:
                event["tenant_id"] = tenant_id
            if error_message is not None:
                event["error_message"] = error_message
            if latency_ms is not None:
                event["latency_ms"] = latency_ms
            if success is not True and success is not None:  # True is the ledger's default
                event["success"] = success
            if metadata is not None:
                event["metadata"] = metadata
            if usage_overrides:
                _merge(event, usage_overrides)
            self._finish(event)
        except Exception:
            log.exception("ai_usage_client.record_failed request_id=%s", request_id)
        return request_id

    def log(self, **event_fields: Any) -> str:
        """Record a call without a provider response: the ledger's event fields (``latency_ms`` is accepted too)."""
        request_id = event_fields.pop("request_id", None) or new_request_id()
        try:
            event: dict[str, Any] = {"request_id": request_id}
            _merge(event, event_fields)
            self._finish(event)
        except Exception:
            log.exception("ai_usage_client.record_failed request_id=%s", request_id)
        return request_id

    def track(self, **labels: Any) -> TrackedCall:
        """``with client.track(user_id=..., task_type=..., model=...) as call: call.record(response)``.

        Times the block; an exception records a failed event (zero tokens, the error) and goes on unchanged.
        ``model``/``provider`` given here are what a failed call is logged with; the response's own win.
        """
        return TrackedCall(self, labels)

    def tracked(self, **labels: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorate a function (or coroutine function) returning a provider response; see ``track``.

        A label may be a callable taking the function's arguments: ``user_id=lambda player, *a, **k: player.id``.
        """
        return tracked_decorator(self, labels)

    def wrap_stream(self, stream: Any, **labels: Any) -> Any:
        """Pass a provider stream through unchanged and record its final usage once, when it ends.

        A stream abandoned or broken halfway records what it reported, with ``metadata.stream_incomplete``.
        """
        try:
            from .streams import wrap_stream

            start = time.perf_counter()
            request_id = labels.pop("request_id", None) or new_request_id()
            defaults = {name: labels.pop(name) for name in ("model", "provider") if name in labels}

            def on_done(fields: dict[str, Any], complete: bool) -> None:
                usage = {**defaults, **fields}
                usage.setdefault("model", UNKNOWN_MODEL)  # broken before its first chunk: still recorded
                event = dict(labels, latency_ms=(time.perf_counter() - start) * 1000)
                # The stream's own flags (usage_missing) and the game's metadata together; incomplete on top.
                metadata = {**(usage.pop("metadata", None) or {}), **(labels.get("metadata") or {})}
                if not complete:
                    metadata["stream_incomplete"] = True
                if metadata:
                    event["metadata"] = metadata
                self._emit(usage, event, {}, request_id)

            return wrap_stream(stream, on_done, defaults.get("provider"))
        except Exception:
            log.exception("ai_usage_client.wrap_stream_failed: the stream is returned unwrapped")
            return stream

    def _record(
        self,
        response: object,
        labels: dict[str, Any],
        overrides: dict[str, Any],
        request_id: str | None,
        defaults: Mapping[str, Any] | None = None,
    ) -> str:
        request_id = request_id or new_request_id()
        try:
            usage = dict(defaults or {})
            if response is not None:
                fields = self._usage(response, overrides.get("provider") or usage.get("provider"))
                if fields is None:
                    labels["metadata"] = _flag_unrecognised(labels.get("metadata"), response)
                    usage.setdefault("model", _model_of(response))
                else:
                    usage.update(fields)
            self._emit(usage, labels, overrides, request_id)
        except Exception:
            log.exception("ai_usage_client.record_failed request_id=%s", request_id)
        return request_id

    def _usage(self, response: object, provider: str | None) -> dict[str, Any] | None:
        """The response's usage; None when it cannot be read (the call is still recorded: labels, latency)."""
        try:
            return usage_of(response, provider)
        except ValueError as exc:  # UnrecognisedResponse: an answer of a shape the client does not know
            log.warning("ai_usage_client.usage_unrecognised type=%s: %s", type(response).__name__, exc)
        except Exception:  # a bug in the extraction: logged, and the call is not lost
            log.exception("ai_usage_client.usage_failed type=%s", type(response).__name__)
        return None

    def _emit(self, usage: dict[str, Any], labels: dict[str, Any], overrides: dict[str, Any], request_id: str) -> None:
        event: dict[str, Any] = {"request_id": request_id}
        _merge(event, usage)
        _merge(event, labels)
        _merge(event, overrides)
        self._finish(event)

    def _finish(self, event: dict[str, Any]) -> None:
        """The merged event into the ledger's form, then queued."""
        latency = event.pop("latency_ms", None)
        if latency is not None:
            # A value that is not a finite number (a header's text, NaN) is passed on as given: the ledger refuses
            # it by name and the event is kept as a dead letter, never dropped here.
            finite = isinstance(latency, int | float) and not isinstance(latency, bool) and math.isfinite(latency)
            event["request_duration_ms"] = max(0, round(latency)) if finite else latency
        moment = event.get("timestamp")
        if moment is None:
            event["timestamp"] = now_utc()
        elif isinstance(moment, datetime):
            event["timestamp"] = moment.isoformat()
        metadata = event.get("metadata")
        if isinstance(metadata, Mapping) and not isinstance(metadata, dict):
            event["metadata"] = dict(metadata)
        if event.get("success", True) is True:
            event.pop("success", None)  # the ledger's default; keeps the event small
        self._one_queued()
        self._sender.offer(event)

    def failure_event(self, labels: dict[str, Any], exc: BaseException, latency_ms: float, request_id: str) -> None:
        """A call that raised: zero tokens, success false, the exception's type and message."""
        try:
            message = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_MESSAGE_CHARS]
        except Exception:  # an exception whose text cannot be made: its type still says what failed
            message = type(exc).__name__
        event = dict(labels, success=False, error_message=message, latency_ms=latency_ms)
        event.setdefault("model", UNKNOWN_MODEL)
        self._record(None, event, {}, request_id)


def _merge(event: dict[str, Any], source: Mapping[str, Any]) -> None:
    """Add ``source``'s fields to ``event``, over what it has; a None is a field not given."""
    for name, value in source.items():
        if value is not None:
            event[name] = value


def _model_of(response: object) -> str:
    """The model an unreadable response plainly names, else ``UNKNOWN_MODEL``: the ledger needs one to record the
    call (flagged ``usage_unrecognised``) rather than refuse it."""
    try:
        model = response.get("model") if isinstance(response, Mapping) else getattr(response, "model", None)
    except Exception:
        model = None
    return model if isinstance(model, str) and model.strip() else UNKNOWN_MODEL


def _flag_unrecognised(metadata: Mapping[str, Any] | None, response: object) -> dict[str, Any]:
    """The metadata of a call whose usage could not be read, saying so (the ledger can list them)."""
    return {**(metadata or {}), "usage_unrecognised": type(response).__name__}
