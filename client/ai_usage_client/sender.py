"""The background sender: one daemon thread that batches queued events to the ledger, off the game's hot path.

The game's thread only appends to a deque (``offer``). The thread takes up to ``max_batch`` events (waiting
``linger`` seconds for a batch to fill), sends them, and keeps in the spool whatever the ledger did not
acknowledge. While the spool holds events, new ones join it behind them, so the ledger receives events oldest
first. After a failure it backs off exponentially, with jitter and a cap, or as long as ``Retry-After`` says;
during the back-off new events go straight to the spool, so nothing waits in memory on a ledger that is down.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

from .spool import Spool, SpoolError
from .stats import Counters
from .transport import ACKNOWLEDGED, Answer, BatchInvalid, Delivered, Transient, Transport

log = logging.getLogger("ai_usage_client")
IDLE_CHECK_SECONDS = 5.0  # how often an idle sender looks for events another process left in the spool


class Item(NamedTuple):  # a tuple: built on the game's thread for every event, so it must be cheap
    request_id: str
    body: str  # the event as JSON
    seq: int | None = None  # its spool row, when it is replayed from the spool


# Item(...) runs the Python __new__ NamedTuple generates; the game's thread builds the tuple directly.
_new_item = tuple.__new__
Outcomes = dict[int, tuple[str, list[dict[str, Any]]]]


# One encoder, built once: json.dumps with any option builds a new one per call. allow_nan=False: NaN is not
# JSON, and the ledger would refuse the whole batch for it.
_encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
# Its C core, built once too (JSONEncoder.encode builds one per call: ~7 µs of a call made with cold caches), with
# the same options, so the same text and errors; but without circular-reference markers (a dict every call would
# share, and an error leaves dirty): a circular event raises RecursionError, and _encoder then names the fault.
_c_make = json.encoder.c_make_encoder  # None without the _json accelerator (not CPython): _encoder does it all
_c_encode = _c_make and _c_make(
    None, _encoder.default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False
)


def encode(event: dict[str, Any]) -> str:
    """The event as compact JSON; TypeError or ValueError when it is not JSON."""
    if _c_encode is None:
        return _encoder.encode(event)
    try:
        return "".join(_c_encode(event, 0))
    except RecursionError:
        return _encoder.encode(event)  # ValueError for a circular event; RecursionError if only too deep


class Sender:
    def __init__(
        self,
        transport: Transport,
        spool: Spool,
        counters: Counters,
        *,
        max_queue: int,
        max_batch: int,
        linger: float,
        backoff_base: float,
        backoff_cap: float,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.transport = transport
        self.spool = spool
        self.counters = counters
        self.queue: deque[Item] = deque()
        self.max_queue = max_queue
        self.max_batch = max_batch
        self.linger = linger
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._jitter = jitter
        self._failures = 0
        self._retry_at = 0.0  # time.monotonic() before which the ledger is not tried again
        self._wake = threading.Event()
        self._progress = threading.Condition()
        self._in_flight: list[Item] = []
        self._urgent = 0  # flushes waiting: skip the linger
        self._replay_now = False
        self._stopping = False
        self.spool_pending = spool.has_pending()
        self._thread = threading.Thread(target=self._run, name="ai-usage-client-sender", daemon=True)
        self._thread.start()

    # -- called from the game's threads --------------------------------------------------------------------
    def offer(self, event: dict[str, Any]) -> None:
        """Queue an event; when the queue is full (or the sender has stopped), write it to the spool instead.

        The event is encoded here, on the game's thread: a few microseconds more per call, but the sender then
        holds the GIL only in short stretches, and a game thread never waits behind it encoding a whole batch.
        """
        request_id = event.get("request_id")
        if type(request_id) is not str:
            request_id = str(request_id)
        try:
            item = _new_item(Item, (request_id, encode(event), None))
        except (TypeError, ValueError) as exc:  # not JSON (an object in metadata, NaN): the ledger cannot take it
            body = json.dumps(event, default=repr)
            self._refuse(request_id, body, "rejected", [{"field": "event", "message": f"not JSON: {exc}"}], None)
            return
        if len(self.queue) >= self.max_queue or self._stopping:
            self._keep([item], "client closed" if self._stopping else "queue full")
            return
        self.queue.append(item)
        length = len(self.queue)
        if length == 1 or length == self.max_batch:
            self._wake.set()  # only on the first event or a full batch: the thread lingers for the rest

    def flush(self, timeout: float | None, replay: bool) -> bool:
        """Wait until the queue is with the ledger or in the spool (and, with ``replay``, the spool is empty)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._progress:
            self._urgent += 1
            if replay:
                self._replay_now = True
        self._wake.set()
        try:
            with self._progress:
                while not self._drained(replay):
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._progress.wait(remaining)
                return True
        finally:
            with self._progress:
                self._urgent -= 1

    def stop(self, timeout: float | None) -> bool:
        """Stop the thread after it has sent or spooled the queue; False when it did not finish in time."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            # Stuck on a slow ledger: keep what it holds in the spool (a second delivery is only a duplicate).
            with self._progress:
                stranded = [item for item in self._in_flight if item.seq is None]
            self._keep(stranded, "client closed while sending")
            self._keep(self._take_all(), "client closed")
            return False
        return True

    def _drained(self, replay: bool) -> bool:
        return not self.queue and not self._in_flight and not (replay and self.spool_pending)

    # -- the thread ----------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._wait()
            stopping = self._stopping
            try:
                with self._progress:
                    batch = self._take(self.max_batch)
                    self._in_flight = batch
                if batch:
                    self._send_fresh(batch)
                elif not stopping and self.spool_pending and (self._replay_now or time.monotonic() >= self._retry_at):
                    self._replay_now = False
                    self._replay()
            except Exception:  # a bug here must not stop the thread: keep the batch and carry on
                log.exception("ai_usage_client.sender_failed")
                self._keep([item for item in self._in_flight if item.seq is None], "client error")
                self._back_off(Transient("client error"))  # a spool that keeps failing is not retried in a loop
            finally:
                with self._progress:
                    self._in_flight = []
                    self._progress.notify_all()
            if stopping and not self.queue:
                return

    def _wait(self) -> None:
        if not self.queue and not self._stopping:
            if self.spool_pending:
                if not self._replay_now:  # replay when the back-off ends, or at once when a new event comes
                    self._wake.wait(max(0.0, self._retry_at - time.monotonic()))
            elif not self._wake.wait(IDLE_CHECK_SECONDS):
                self.spool_pending = self._safe_has_pending()
            self._wake.clear()
        if self.queue and len(self.queue) < self.max_batch and not (self._urgent or self._stopping):
            self._wake.wait(self.linger)  # let a batch fill; a full batch or a flush ends the wait early
            self._wake.clear()

    def _take(self, limit: int) -> list[Item]:
        taken: list[Item] = []
        while self.queue and len(taken) < limit:
            taken.append(self.queue.popleft())
        return taken

    def _take_all(self) -> list[Item]:
        return self._take(len(self.queue) + 1_000_000)

    def _send_fresh(self, batch: list[Item]) -> None:
        if time.monotonic() < self._retry_at:
            self._keep(batch, "ledger unavailable (backing off)")
            return
        if self.spool_pending:
            self._keep(batch, "behind older spooled events")  # oldest first: they go after the spool's
            self._replay()
            return
        outcomes, transient = self._deliver(batch)
        for index, (status, errors) in outcomes.items():
            item = batch[index]
            if status in ACKNOWLEDGED:
                self.counters.add(sent=1, duplicates=status == "duplicate")
            else:
                self._refuse(item.request_id, item.body, status, errors, None)
        if transient is not None:
            self._keep([item for index, item in enumerate(batch) if index not in outcomes], transient.reason)
            self._back_off(transient)
        else:
            self._failures = 0

    def _replay(self) -> None:
        rows = self.spool.oldest(self.max_batch)
        batch = [Item(row.request_id, row.body, row.seq) for row in rows]
        outcomes, transient = self._deliver(batch) if batch else ({}, None)
        acknowledged: list[int] = []
        refused: list[tuple[int, str, list[dict[str, Any]]]] = []
        duplicates = 0
        for index, (status, errors) in outcomes.items():
            seq = batch[index].seq
            assert seq is not None
            if status in ACKNOWLEDGED:
                acknowledged.append(seq)
                duplicates += status == "duplicate"
            else:
                refused.append((seq, status, errors))
                self._log_refused(batch[index], status, errors)
        self.spool.settle(acknowledged, refused)
        self.counters.add(sent=len(acknowledged), replayed=len(acknowledged), duplicates=duplicates)
        self.counters.add(rejected=len(refused))
        if transient is not None:
            self._back_off(transient)
        else:
            self._failures = 0
            self.spool_pending = self.spool.has_pending()

    def _deliver(self, batch: list[Item]) -> tuple[Outcomes, Transient | None]:
        """Send a batch; a batch refused as a whole is split in halves until the events at fault are found."""
        answer: Answer = self.transport.send([item.body for item in batch])
        if isinstance(answer, Delivered):
            return dict(enumerate(answer.results)), None
        if isinstance(answer, Transient):
            return {}, answer
        assert isinstance(answer, BatchInvalid)
        if len(batch) == 1:
            return {0: ("rejected", answer.errors)}, None
        middle = len(batch) // 2
        left, transient = self._deliver(batch[:middle])
        if transient is not None:
            return left, transient
        right, transient = self._deliver(batch[middle:])
        return left | {middle + index: outcome for index, outcome in right.items()}, transient

    def _back_off(self, transient: Transient) -> None:
        self._failures += 1
        delay = min(self.backoff_cap, self.backoff_base * 2 ** (self._failures - 1))
        delay *= 0.5 + self._jitter() / 2  # jitter: clients that failed together do not come back together
        if transient.retry_after is not None:
            delay = max(delay, transient.retry_after)
        self._retry_at = time.monotonic() + delay
        log.warning("ai_usage_client.ledger_unavailable reason=%s retry_in=%.2fs", transient.reason, delay)

    def _keep(self, items: list[Item], reason: str) -> None:
        if not items:
            return
        try:
            self.counters.add(spooled=self.spool.add(((i.request_id, i.body) for i in items), reason))
            self.spool_pending = True
        except SpoolError:
            self.counters.add(dropped=len(items))
            log.exception(
                "ai_usage_client.dropped count=%d request_ids=%s: the spool cannot be written",
                len(items),
                [item.request_id for item in items],
            )

    def _refuse(self, request_id: str, body: str, status: str, errors: list[dict[str, Any]], seq: int | None) -> None:
        self._log_refused(Item(request_id, body, seq), status, errors)
        try:
            self.spool.add_dead(request_id, body, status, errors)
            self.counters.add(rejected=1)
        except SpoolError:
            self.counters.add(dropped=1)
            log.exception("ai_usage_client.dropped request_id=%s: the dead-letter table cannot be written", request_id)

    @staticmethod
    def _log_refused(item: Item, status: str, errors: list[dict[str, Any]]) -> None:
        # The event's own fields (ids, model, counts) say what to fix; it holds no key or other secret.
        log.warning(
            "ai_usage_client.rejected request_id=%s status=%s errors=%s event=%s",
            item.request_id,
            status,
            json.dumps(errors),
            item.body,
        )

    def _safe_has_pending(self) -> bool:
        try:
            return self.spool.has_pending()
        except SpoolError:
            log.exception("ai_usage_client.spool_unreadable")
            return False
