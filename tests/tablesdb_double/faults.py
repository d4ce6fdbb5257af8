"""Scheduled faults: which request misbehaves, and how; and a trickling wire in front of a double."""

from __future__ import annotations

import re
import socket
import threading
from contextlib import suppress
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

KINDS = frozenset({"status_429", "status_503", "status_500", "slow", "drop", "lost_answer", "conflict", "late_commit"})


class Fault:
    """A misbehaviour for matching requests.

    method: HTTP method to match (any when None); path: regex searched in the request path
    (e.g. r"/rows$"; the path includes the /v1 prefix, not the query string); kind: one of KINDS
    (required); after: matching requests to let through first; times: matching requests it then
    hits; delay: seconds to sleep for kind "slow". A "conflict" fault matches only transaction commits.

    A "late_commit" fault (commits only) is a commit Appwrite goes on applying after its answer is lost (a proxy
    gave up on it): the transaction shows `committing`, the connection drops, and the operations land `delay`
    seconds later, or as the next transaction is created if that comes first; then `committed` (or `failed`).
    """

    def __init__(
        self,
        method: str | None = None,
        path: str | None = None,
        kind: str | None = None,
        times: int = 1,
        after: int = 0,
        delay: float = 0.0,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(KINDS)}")
        if times < 1 or after < 0 or delay < 0:
            raise ValueError("times must be ≥ 1, after and delay ≥ 0")
        self.method, self.path, self.kind = method, path, kind
        self.times, self.after, self.delay = times, after, delay
        self._pattern = re.compile(path) if path is not None else None
        self._skipped = 0
        self._hits = 0

    def __repr__(self) -> str:
        return (
            f"Fault(method={self.method!r}, path={self.path!r}, kind={self.kind!r}, times={self.times}, "
            f"after={self.after}, delay={self.delay})"
        )

    def _matches(self, method: str, path: str, is_commit: bool) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self._pattern is not None and self._pattern.search(path) is None:
            return False
        return is_commit or self.kind not in ("conflict", "late_commit")

    @property
    def exhausted(self) -> bool:
        return self._hits >= self.times


@dataclass
class FaultSchedule:
    faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def take(self, method: str, path: str, *, is_commit: bool) -> Fault | None:
        """The fault that hits this request, if any (the first live one in insertion order)."""
        with self._lock:
            for fault in self.faults:
                if fault.exhausted or not fault._matches(method, path, is_commit):
                    continue
                if fault._skipped < fault.after:
                    fault._skipped += 1
                    continue
                fault._hits += 1
                return fault
        return None


class TrickleProxy:
    """A TCP proxy in front of a started double whose answers arrive one byte every ``byte_delay`` seconds.

    Every socket read then succeeds well within any per-read timeout while a whole answer takes hundreds of
    times longer: the slow network, or the proxy dripping a response, that a per-read timeout never cuts off.
    Status line and headers trickle too. Requests pass unchanged; ``trickling = False`` lets answers through at
    full speed. ``endpoint``, ``project_id`` and ``api_key`` mirror the double's, so the proxy can stand where a
    double is expected (``tests.appwrite_support.tables_db_for(proxy)``). A client that gives up closes its
    connection and the proxy stops sending on it.
    """

    def __init__(self, double: Any, byte_delay: float = 0.05) -> None:
        target = urlsplit(double.endpoint)
        self._upstream = (target.hostname or "127.0.0.1", target.port or 80)
        self._path = target.path
        self.project_id, self.api_key = double.project_id, double.api_key
        self.byte_delay = byte_delay
        self.trickling = True
        self._stopped = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # accept() wakes up to notice stop()
        threading.Thread(target=self._accept, name="trickle-proxy", daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}{self._path}"

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            for sock in [self._listener, *self._sockets]:
                with suppress(OSError):
                    sock.close()

    def __enter__(self) -> TrickleProxy:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                server = socket.create_connection(self._upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        try:
            while data := source.recv(65536):
                if not (answers and self.trickling):
                    sink.sendall(data)
                    continue
                for index in range(len(data)):
                    if self._stopped.wait(self.byte_delay):
                        return
                    sink.sendall(data[index : index + 1])
        except OSError:
            pass  # either side went away (a client that gave up): stop this direction
        finally:
            for sock in (source, sink):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
