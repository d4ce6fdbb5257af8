"""How a batch reaches the ledger: over HTTP (``POST /v1/usage/batch``) or in-process (a ``UsageTrackingService``).

A transport sends already-encoded events and answers one of three things, so the sender needs no HTTP details:
``Delivered`` (one (status, errors) per event, in order), ``Transient`` (not acknowledged: try again later,
perhaps after ``retry_after`` seconds) or ``BatchInvalid`` (the ledger refused the batch as a whole, which the
sender splits to find the events at fault).
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

log = logging.getLogger("ai_usage_client")

# Statuses a 200 answer gives per event (the ledger's LogStatus).
ACKNOWLEDGED = frozenset({"stored", "duplicate"})
REFUSED = frozenset({"rejected", "conflict"})
MAX_RETRY_AFTER = 600.0  # a Retry-After is honoured up to 10 minutes; beyond that it is more likely a mistake


@dataclass(frozen=True)
class Delivered:
    results: list[tuple[str, list[dict[str, Any]]]]


@dataclass(frozen=True)
class Transient:
    reason: str
    retry_after: float | None = None


@dataclass(frozen=True)
class BatchInvalid:
    reason: str
    errors: list[dict[str, Any]]


Answer = Delivered | Transient | BatchInvalid
Outcomes = dict[int, tuple[str, list[dict[str, Any]]]]  # by index in the batch: (status, errors)


def deliver(transport: Transport, bodies: list[str]) -> tuple[Outcomes, Transient | None]:
    """Send a batch; a batch refused as a whole is split in halves until the events at fault are found."""
    answer = transport.send(bodies)
    if isinstance(answer, Delivered):
        return dict(enumerate(answer.results)), None
    if isinstance(answer, Transient):
        return {}, answer
    assert isinstance(answer, BatchInvalid)
    if len(bodies) == 1:
        return {0: ("rejected", answer.errors)}, None
    middle = len(bodies) // 2
    left, transient = deliver(transport, bodies[:middle])
    if transient is not None:
        return left, transient
    right, transient = deliver(transport, bodies[middle:])
    return left | {middle + index: outcome for index, outcome in right.items()}, transient


class Transport(Protocol):
    def send(self, bodies: Sequence[str]) -> Answer: ...

    def close(self) -> None: ...


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: a number of seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    delay = moment.timestamp() - (time.time() if now is None else now)
    return min(max(delay, 0.0), MAX_RETRY_AFTER)


class HttpTransport:
    """One keep-alive connection, used by the sender thread only; reopened after any failure."""

    def __init__(self, base_url: str, api_key: str, timeout: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http:// or https:// URL, not {base_url!r}")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path.rstrip("/") + "/v1/usage/batch"
        self._timeout = timeout
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "ai-usage-client",
        }
        self._connection: http.client.HTTPConnection | None = None

    def __repr__(self) -> str:  # never show the key
        return f"HttpTransport({self._scheme}://{self._host}:{self._port}{self._path})"

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            kind = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            self._connection = kind(self._host, self._port, timeout=self._timeout)
        return self._connection

    def send(self, bodies: Sequence[str]) -> Answer:
        payload = ('{"events":[' + ",".join(bodies) + "]}").encode()
        reused = self._connection is not None
        try:
            status, headers, data = self._post(payload)
        except (OSError, http.client.HTTPException) as first:
            self.close()
            if not reused:
                return Transient(f"cannot reach the ledger: {type(first).__name__}: {first}")
            # A kept-alive connection the server closed while idle: try once more on a fresh one (the batch
            # is idempotent by request_id, so a second delivery is a duplicate, never a double count).
            try:
                status, headers, data = self._post(payload)
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                return Transient(f"cannot reach the ledger: {type(exc).__name__}: {exc}")
        return self._answer(status, headers, data, len(bodies))

    def _post(self, payload: bytes) -> tuple[int, http.client.HTTPMessage, bytes]:
        connection = self._connect()
        connection.request("POST", self._path, body=payload, headers=self._headers)
        response = connection.getresponse()
        data = response.read()
        if response.will_close:
            self.close()
        return response.status, response.headers, data

    def _answer(self, status: int, headers: http.client.HTTPMessage, data: bytes, count: int) -> Answer:
        if status == 200:
            if (summary := _all_acknowledged(data, count)) is not None:
                return summary
            try:
                results = [(item["status"], item.get("errors") or []) for item in json.loads(data)["results"]]
            except (ValueError, KeyError, TypeError) as exc:
                return Transient(f"unreadable answer from the ledger: {exc}")
            if len(results) != count:
                return Transient(f"the ledger answered {len(results)} results for {count} events")
            return Delivered(results)
        if status in (400, 413, 422):
            return BatchInvalid(f"HTTP {status}", _error_fields(data))
        reason = f"HTTP {status}"
        if status in (401, 403, 404, 405):
            # Not the events' fault (a wrong key or base_url): keep them until the configuration is fixed.
            log.error("ai_usage_client.ledger_refused_client status=%s: check base_url and api_key", status)
        return Transient(reason, retry_after_seconds(headers.get("Retry-After")))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


_HEAD = re.compile(rb'^\{"stored":(\d+),"duplicates":(\d+),"rejected":(\d+),"conflicts":(\d+),"results":\[')


def _all_acknowledged(data: bytes, count: int) -> Delivered | None:
    """The answer from its counts alone, when they say every event was stored or a duplicate; else None.

    The answer repeats each stored row (about 1.5 KB an event): parsing it all holds the GIL for milliseconds
    per 1,000 events, time a game thread would wait. Which events were duplicates does not matter then, only
    how many, so the counts at the head are enough. Anything unexpected falls back to reading the results.
    """
    head = _HEAD.match(data)
    if head is None:
        return None
    stored, duplicates, rejected, conflicts = (int(group) for group in head.groups())
    if rejected or conflicts or stored + duplicates != count:
        return None
    return Delivered([("stored", [])] * stored + [("duplicate", [])] * duplicates)


def _error_fields(data: bytes) -> list[dict[str, Any]]:
    try:
        error = json.loads(data)["error"]
        fields = error.get("fields") or [{"field": "batch", "message": error.get("message", "")}]
        return [{"field": str(f.get("field")), "message": str(f.get("message"))} for f in fields]
    except (ValueError, KeyError, TypeError, AttributeError):
        return [{"field": "batch", "message": data[:200].decode("utf-8", "replace")}]


class InProcessTransport:
    """Calls ``UsageTrackingService.log_usage_batch`` directly; the server's packages are installed here."""

    def __init__(self, service: Any) -> None:
        from services.errors import ValidationFailed  # only in-process: the server is installed beside the client

        self._service = service
        self._invalid = ValidationFailed

    def send(self, bodies: Sequence[str]) -> Answer:
        try:
            results = self._service.log_usage_batch([json.loads(body) for body in bodies])
        except self._invalid as exc:
            errors = [{"field": e.field, "message": e.message} for e in exc.fields]
            return BatchInvalid("ValidationFailed", errors)
        except Exception as exc:  # the store is down, or a bug: the events wait in the spool either way
            log.warning("ai_usage_client.in_process_failed error=%s: %s", type(exc).__name__, exc)
            return Transient(f"{type(exc).__name__}: {exc}")
        return Delivered(
            [(str(r.status), [{"field": e.field, "message": e.message} for e in r.errors]) for r in results]
        )

    def close(self) -> None:
        pass
