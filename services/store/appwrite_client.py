"""The Appwrite SDK client with what a long-lived server process needs: deadlines and kept-alive connections.

SDK 27's ``Client.call`` sends every request through ``requests.request`` with no timeout (a stalled server
blocks the caller for ever) and a fresh TCP connection each time. This subclass keeps the SDK's services,
models and error type and changes only the transport: one ``requests.Session`` per thread, a total deadline
on every request, and the server's ``x-appwrite-warning`` logged once instead of printed on every call.
Failures are raised as ``AppwriteException`` exactly as the SDK raises them (network failures with code 0).

A request's deadline is ``timeout_seconds`` capped by the ambient ``services.deadlines`` deadline (the retry
budget, or a caller's tighter one). ``requests``' timeout bounds each socket read, not the request, so a server
trickling its answer a byte at a time was never cut off. Here a watchdog thread shuts down the socket of a
request whose deadline passed, whichever phase it is in (sending, waiting, reading headers or body); the
blocked read fails at once and the request is raised as code 0, type ``deadline_exceeded`` when the ambient
deadline was the limit (the retry loop then stops) or a plain network error when the timeout was.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import socket
import threading
import time
from contextlib import suppress
from contextvars import ContextVar
from typing import Any

import requests
import structlog
from appwrite.client import Client
from appwrite.encoders.value_class_encoder import ValueClassEncoder
from appwrite.exception import AppwriteException
from appwrite.query import Query
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, ProxyManager
from urllib3.connection import HTTPConnection, HTTPSConnection

from services import deadlines
from services.store.appwrite_retry import DEADLINE_EXCEEDED

log = structlog.get_logger(__name__)


class _Guard:
    """One request's total deadline: once it passes, the request's socket is shut down."""

    def __init__(self, at: float) -> None:
        self.at = at
        self.fired = False
        self.done = False
        self._conn: HTTPConnection | None = None
        self._lock = threading.Lock()

    def attach(self, conn: HTTPConnection) -> None:
        """The connection carrying the request (called again once it is sent, in case it connected late)."""
        with self._lock:
            self._conn = conn
            fired = self.fired
        if fired:
            _shut_down(conn)

    def fire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.fired = True
            conn = self._conn
        if conn is not None:
            _shut_down(conn)

    def finish(self) -> None:
        # Sessions are per thread, so once this returns the connection can only carry this thread's next
        # request: a late fire would cut that one, hence the lock.
        with self._lock:
            self.done = True


def _shut_down(conn: HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        with suppress(OSError):
            # The plain socket's shutdown, also under TLS (SSLSocket.shutdown would drop its SSL object while
            # the owner thread is reading): a read blocked in another thread returns at once, and the pool
            # discards the connection instead of reusing it.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """One daemon thread for every request in the process: fires the guards whose deadline has passed."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Guard]] = []
        self._order = itertools.count()
        self.reset()

    def reset(self) -> None:
        """A fresh lock and no thread: at start, and in a forked child (the parent's lock may have been held)."""
        self._wake = threading.Condition()
        self._heap.clear()
        self._thread: threading.Thread | None = None

    def watch(self, guard: _Guard) -> None:
        with self._wake:
            heapq.heappush(self._heap, (guard.at, next(self._order), guard))
            if self._thread is None or not self._thread.is_alive():  # first use, or a forked child
                self._thread = threading.Thread(target=self._run, name="appwrite-deadlines", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is guard:
                self._wake.notify()  # the earliest deadline moved closer

    def _run(self) -> None:
        with self._wake:
            while True:
                now = time.monotonic()
                # Finished guards are dropped when they reach the top (at most a timeout later), not searched for.
                while self._heap and (self._heap[0][2].done or self._heap[0][0] <= now):
                    heapq.heappop(self._heap)[2].fire()
                self._wake.wait(self._heap[0][0] - now if self._heap else None)


_WATCHDOG = _Watchdog()
os.register_at_fork(after_in_child=_WATCHDOG.reset)
_GUARD: ContextVar[_Guard | None] = ContextVar("appwrite_request_guard", default=None)


class _Guarded:
    """Hands the connection to the request's guard as the request goes out on it."""

    def request(self, *args: Any, **kwargs: Any) -> None:
        guard = _GUARD.get()
        if guard is not None:
            guard.attach(self)  # type: ignore[arg-type]
        super().request(*args, **kwargs)  # type: ignore[misc]
        if guard is not None:
            guard.attach(self)  # type: ignore[arg-type]


class _GuardedHTTPConnection(_Guarded, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


_POOLS = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


class _GuardedAdapter(HTTPAdapter):
    """``requests``' adapter with urllib3 pools whose connections report to the request's guard."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, ProxyManager):  # an HTTP(S) proxy; a SOCKS one keeps its own pools
            manager.pool_classes_by_scheme = _POOLS
        return manager


def _new_session() -> requests.Session:
    session = requests.Session()
    adapter = _GuardedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class TimeoutClient(Client):
    """``appwrite.client.Client`` with a total deadline per request and one pooled session per thread."""

    def __init__(self, timeout_seconds: float, *, keep_alive: bool = True) -> None:
        super().__init__()
        self.timeout_seconds = timeout_seconds
        self.keep_alive = keep_alive
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    def _session(self) -> requests.Session:
        if not self.keep_alive:
            return _new_session()  # a new connection per request, as the SDK does (closed after the request)
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = _new_session()
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()
        self._local = threading.local()

    def call(self, method, path="", headers=None, params=None, response_type="json"):  # type: ignore[no-untyped-def]
        # Same request shape as the SDK: GET parameters flattened into the query string, JSON bodies otherwise.
        params = {key: Query._flatten(value) for key, value in (params or {}).items()}
        headers = {**self._global_headers, **(headers or {})}
        query: dict[str, Any] = {}
        body: str | None = None
        if method == "get":
            query = self.flatten(params)
        elif headers.get("content-type", "").startswith("application/json"):
            body = json.dumps(params, cls=ValueClassEncoder)
        else:
            # A programming error, not a network one: a non-zero code keeps the retry loop from retrying it.
            raise AppwriteException(
                f"TimeoutClient sends JSON bodies only, not {headers.get('content-type')!r}", 400, "client_usage"
            )
        left = deadlines.remaining()
        limit = self.timeout_seconds if left is None else min(self.timeout_seconds, left)
        bound = DEADLINE_EXCEEDED if left is not None and left <= self.timeout_seconds else None
        if limit <= 0:
            raise AppwriteException(f"{method.upper()} {path} not sent: the deadline has passed", 0, bound)
        guard = _Guard(time.monotonic() + limit)
        session = self._session()
        token = _GUARD.set(guard)
        _WATCHDOG.watch(guard)
        try:
            response = session.request(
                method,
                self._endpoint + path,
                params=query,
                data=body,
                headers=headers,
                verify=not self._self_signed,
                timeout=limit,
                allow_redirects=response_type != "location",
            )
        except Exception as exc:
            if guard.fired:  # whatever the cut-off socket made the read raise
                raise AppwriteException(
                    f"{method.upper()} {path}: no complete answer within {limit:g}s, cut off", 0, bound
                ) from exc
            if isinstance(exc, requests.RequestException):
                raise AppwriteException(f"{type(exc).__name__}: {exc}", 0) from exc
            raise
        finally:
            guard.finish()
            _GUARD.reset(token)
            if not self.keep_alive:
                session.close()
        self._note_warning(response.headers.get("x-appwrite-warning"))
        content_type = response.headers.get("Content-Type", "")
        if response.status_code >= 400:
            if content_type.startswith("application/json"):
                try:
                    error = response.json()
                except ValueError:
                    error = {"message": response.text}
                raise AppwriteException(
                    error.get("message", response.text), response.status_code, error.get("type"), response.text
                )
            raise AppwriteException(response.text, response.status_code, None, response.text)
        if response_type == "location":
            return response.headers.get("Location")
        if response_type == "text":
            return response.content.decode("utf-8")
        if content_type.startswith("application/json"):
            try:
                return response.json()
            except ValueError as exc:
                # A truncated answer is a lost answer: the request may have been executed.
                raise AppwriteException(f"invalid JSON in the answer: {exc}", 0) from exc
        if response.status_code != 204:
            # Appwrite answers JSON; anything else is a proxy in the way (a retryable 502, not a crash later).
            got = content_type or "no content type"
            raise AppwriteException(f"expected JSON, got {got!r}", 502, "unexpected_answer")
        return response.content

    def _note_warning(self, warning: str | None) -> None:
        if warning and warning not in self._warned:
            self._warned.add(warning)
            log.warning("appwrite_server_warning", warning=warning)


def get_json(client: Client, path: str, params: dict[str, Any] | None = None) -> Any:
    """A GET through any SDK client, answered as the server's JSON rather than parsed into the SDK's models.

    The headers are the ones the SDK's own services send (the project id travels per call in SDK 27).
    """
    headers = {"X-Appwrite-Project": client.get_config("project"), "accept": "application/json"}
    return client.call("get", path, headers, params or {})
