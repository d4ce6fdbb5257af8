"""How a client is built, delivers and stops: its options, the sender thread, the spool and the counters.

``ClientLifecycle`` is ``UsageClient`` without the recording calls (``client.py``): the constructors check every
option once, ``flush``/``close`` drain the queue to the ledger or the spool, and process exit closes a client
that was not closed. Nothing here raises into the game once the client is built.
"""

from __future__ import annotations

import atexit
import logging
import os
import time
import weakref
from pathlib import Path
from typing import Any, Self

from .sender import Sender
from .spool import Spool
from .stats import ClientStats, Counters
from .transport import HttpTransport, InProcessTransport, Transport

log = logging.getLogger("ai_usage_client")


class ClientLifecycle:
    """The options, sender, spool and counters of a ``UsageClient``; its flush, close and stats."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        spool_path: str | Path,
        max_queue: int = 10_000,
        max_batch: int = 1000,
        linger: float = 0.05,
        timeout: float = 10.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        exit_timeout: float = 5.0,
    ) -> None:
        if not api_key:
            raise ValueError("api_key: required (the ledger's server key, AI_USAGE_API_KEY)")
        _check_positive(timeout=timeout)
        self._setup(
            HttpTransport(base_url, api_key, timeout),
            spool_path,
            max_queue=max_queue,
            max_batch=max_batch,
            linger=linger,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            exit_timeout=exit_timeout,
        )
        self.base_url = base_url

    @classmethod
    def in_process(cls, service: Any, *, spool_path: str | Path | None = None, **options: Any) -> Self:
        """The same client over ``service.log_usage_batch``; without ``spool_path`` the spool is in memory."""
        client = cls.__new__(cls)
        client._setup(InProcessTransport(service), spool_path or ":memory:", **options)
        client.base_url = None
        return client

    def _setup(
        self,
        transport: Transport,
        spool_path: str | Path,
        *,
        max_queue: int = 10_000,
        max_batch: int = 1000,
        linger: float = 0.05,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        exit_timeout: float = 5.0,
    ) -> None:
        _check_positive(max_queue=max_queue, max_batch=max_batch, backoff_base=backoff_base, backoff_cap=backoff_cap)
        if not 1 <= max_batch <= 1000:
            raise ValueError("max_batch: must be from 1 to 1000 (the ledger's batch limit)")
        if linger < 0 or exit_timeout < 0:
            raise ValueError("linger and exit_timeout: must not be negative")
        self._counters = Counters()
        self._one_queued = self._counters.one_queued  # lock-free (stats.Counters): the hot path calls it
        self._transport = transport
        self._spool = Spool(spool_path)
        self._closed = False
        self._sender = Sender(
            transport,
            self._spool,
            self._counters,
            max_queue=max_queue,
            max_batch=max_batch,
            linger=linger,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
        )
        self._sender.exit_timeout = exit_timeout
        _LIVE_SENDERS.add(self._sender)

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}(base_url={self.base_url!r}, spool_path={str(self._spool.path)!r})"

    # -- delivery ------------------------------------------------------------------------------------------------
    def flush(self, timeout: float | None = 10.0, *, replay: bool = False) -> bool:
        """Wait until every queued event is with the ledger or in the spool; with ``replay``, until the spool
        is empty too (it is tried at once, back-off or not). False when ``timeout`` passed first."""
        try:
            return self._sender.flush(timeout, replay)
        except Exception:
            log.exception("ai_usage_client.flush_failed")
            return False

    def close(self, timeout: float | None = 10.0) -> None:
        """Flush, stop the sender, and keep in the spool anything still unsent. Called at process exit too."""
        if self._closed:
            return
        self._closed = True
        _close_sender(self._sender, timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> ClientStats:
        """The counters: queued, sent, duplicates, spooled, replayed, rejected, dropped."""
        return self._counters.snapshot()

    @property
    def spool(self) -> Spool:
        return self._spool


# Every sender still running, whether or not its client is still referenced: a client dropped without close() is
# collected, but its thread (which holds its sender) runs on and must drain at exit. A fork starts each again.
_LIVE_SENDERS: weakref.WeakSet[Sender] = weakref.WeakSet()


def _close_sender(sender: Sender, timeout: float | None) -> None:
    """Flush, stop the thread, keep in the spool anything still unsent; never raises."""
    try:
        started = time.monotonic()
        sender.flush(timeout, False)
        remaining = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
        if sender.stop(remaining):
            sender.transport.close()
    except Exception:
        log.exception("ai_usage_client.close_failed")
    _LIVE_SENDERS.discard(sender)


def _close_all_at_exit() -> None:
    for sender in list(_LIVE_SENDERS):
        _close_sender(sender, sender.exit_timeout)


def _restart_in_child() -> None:
    # A forked worker (gunicorn --preload, multiprocessing) has no sender thread: without one, its events would
    # wait in a queue nothing reads. The parent keeps sending what it had queued.
    for sender in list(_LIVE_SENDERS):
        try:
            sender.restart_in_child()
        except Exception:
            log.exception("ai_usage_client.restart_after_fork_failed")


atexit.register(_close_all_at_exit)
os.register_at_fork(after_in_child=_restart_in_child)


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name}: must be greater than 0, not {value!r}")
