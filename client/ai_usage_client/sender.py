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
from typing import Any

from .encoding import Item, encode, is_utf8, new_item, safe_repr
from .spool import Spool, SpoolError
from .stats import Counters
from .transport import ACKNOWLEDGED, Transient, Transport, deliver

log = logging.getLogger("ai_usage_client")
SPOOL_CHECK_SECONDS = 5.0  # how often the sender looks for events another client or process left in the spool
# The ledger's body limits: one event past the single-event route's is refused at once (sent, it would be cut off
# mid-upload and retried forever, holding up every event behind it), and a batch stops short of the batch route's.
MAX_EVENT_BYTES = 1024 * 1024
MAX_BATCH_BYTES = 7 * 1024 * 1024


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
        self._stopped = False  # stop() has spooled what the thread left: an event queued after goes there too
        self._stop_lock = threading.Lock()
        self._kept_by_stop: set[int] = set()  # ids of in-flight items stop() spooled while the thread still sent
        self.exit_timeout = 5.0  # how long process exit waits for this sender (the client sets it)
        self.spool_pending = spool.has_pending()
        self._spool_checked = time.monotonic()
        self._start()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ai-usage-client-sender", daemon=True)
        self._thread.start()

    def restart_in_child(self) -> None:
        """After ``fork``: this process has no sender thread, and the queue, locks and spool connection are the
        parent's (the parent sends its queue). Start again empty, on a spool connection of its own."""
        self.queue = deque()
        self._in_flight = []
        self._wake = threading.Event()
        self._progress = threading.Condition()
        self._stop_lock = threading.Lock()
        self._kept_by_stop = set()
        self.spool.reopen_in_child()
        self._start()

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
            body = encode(event)
        except (TypeError, ValueError, RecursionError) as exc:  # not JSON (an object, NaN, a cycle): refused
            self._refuse_unsendable(request_id, event, f"not JSON: {exc!r}")
            return
        if not request_id.isascii() and not is_utf8(request_id):  # a lone surrogate: no spool or ledger takes it
            self._refuse_unsendable(request_id, body, "request_id: must be valid Unicode text (a lone surrogate)")
            return
        if len(body) > MAX_EVENT_BYTES:
            self._refuse_unsendable(request_id, body, f"{len(body)} bytes; the ledger takes at most {MAX_EVENT_BYTES}")
            return
        item = new_item(Item, (request_id, body, None))
        if len(self.queue) >= self.max_queue or self._stopping:
            self._keep([item], "client closed" if self._stopping else "queue full")
            return
        self.queue.append(item)
        if self._stopping:  # close() ran meanwhile: if it already spooled the queue, this event is for the spool
            with self._stop_lock:
                if self._stopped:
                    self._keep(self._take_all(), "client closed")
            return
        length = len(self.queue)
        if length == 1 or length == self.max_batch:
            self._wake.set()  # only on the first event or a full batch: the thread lingers for the rest

    def flush(self, timeout: float | None, replay: bool) -> bool:
        """Wait until the queue is with the ledger or in the spool (and, with ``replay``, the spool is empty)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pending_now = replay and self._safe_has_pending()  # another client or process may have spooled since
        with self._progress:
            self._urgent += 1
            if replay:
                self._replay_now = True
                self.spool_pending = self.spool_pending or pending_now
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
        finished = not self._thread.is_alive()
        if not finished:
            # Stuck on a slow ledger: keep what it holds in the spool (a second delivery is only a duplicate),
            # once: the thread, when its answer comes, leaves these to the spool.
            with self._progress:
                stranded = [item for item in self._in_flight if item.seq is None]
                self._kept_by_stop.update(id(item) for item in stranded)
            self._keep(stranded, "client closed while sending")
        with self._stop_lock:  # what the thread did not take (all of it, if the thread had died or this is a fork)
            self._keep(self._take_all(), "client closed")
            self._stopped = True
        return finished

    def _drained(self, replay: bool) -> bool:
        return not self.queue and not self._in_flight and not (replay and self.spool_pending)

    # -- the thread ----------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            stopping = self._stopping
            try:
                self._wait()
                stopping = self._stopping
                with self._progress:
                    batch = self._take(self.max_batch)
                    self._in_flight = batch
                if batch:
                    self._send_fresh(batch)
                elif not stopping and self.spool_pending and (self._replay_now or time.monotonic() >= self._retry_at):
                    self._replay_now = False
                    self._replay()
            except Exception:  # a bug here must not stop the thread: keep the batch and carry on
                try:
                    log.exception("ai_usage_client.sender_failed")
                    self._keep([item for item in self._in_flight if item.seq is None], "client error")
                    self._back_off(Transient("client error"))  # a failing spool is not retried in a loop
                except Exception:  # not even that: counted and logged in _keep, and the thread goes on
                    log.exception("ai_usage_client.sender_failed_twice")
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
            else:
                self._wake.wait(SPOOL_CHECK_SECONDS)
            self._wake.clear()
        if not self.spool_pending and time.monotonic() - self._spool_checked >= SPOOL_CHECK_SECONDS:
            # Busy or idle: another client or process may have left events in the spool file.
            self._spool_checked = time.monotonic()
            self.spool_pending = self._safe_has_pending()
        if self.queue and len(self.queue) < self.max_batch and not (self._urgent or self._stopping):
            self._wake.wait(self.linger)  # let a batch fill; a full batch or a flush ends the wait early
            self._wake.clear()

    def _take(self, limit: int, budget: int = MAX_BATCH_BYTES) -> list[Item]:
        taken: list[Item] = []
        while self.queue and len(taken) < limit and (not taken or len(self.queue[0].body) <= budget):
            item = self.queue.popleft()
            budget -= len(item.body) + 1
            taken.append(item)
        return taken

    def _take_all(self) -> list[Item]:
        return self._take(len(self.queue) + 1_000_000, budget=1 << 62)

    def _send_fresh(self, batch: list[Item]) -> None:
        if time.monotonic() < self._retry_at:
            self._keep(batch, "ledger unavailable (backing off)")
            return
        if self.spool_pending:
            self._keep(batch, "behind older spooled events")  # oldest first: they go after the spool's
            self._replay()
            return
        outcomes, transient = deliver(self.transport, [item.body for item in batch])
        for index, (status, errors) in outcomes.items():
            item = batch[index]
            if status in ACKNOWLEDGED:
                self.counters.add(sent=1, duplicates=status == "duplicate")
            else:
                self._refuse(item.request_id, item.body, status, errors, None)
        if transient is not None:
            unanswered = [item for index, item in enumerate(batch) if index not in outcomes]
            with self._progress:  # close() may have spooled them already, while this send was under way
                unanswered = [item for item in unanswered if id(item) not in self._kept_by_stop]
            self._keep(unanswered, transient.reason)
            self._back_off(transient)
        else:
            self._failures = 0

    def _replay(self) -> None:
        rows = self.spool.oldest(self.max_batch)
        batch = [Item(row.request_id, row.body, row.seq) for row in rows]
        outcomes, transient = deliver(self.transport, [item.body for item in batch]) if batch else ({}, None)
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

    def _refuse_unsendable(self, request_id: str, event: object, reason: str) -> None:
        """An event the ledger could never take, kept as a dead letter in text that can always be stored."""
        try:
            body = event if isinstance(event, str) else json.dumps(event, default=repr)
        except Exception:  # a cycle, an int past str()'s digit limit...
            body = json.dumps({"request_id": request_id, "unencodable": safe_repr(event)})
        # Stored as the spool's own text: a lone surrogate in the id (not UTF-8) is escaped, never a failure.
        request_id = request_id.encode("utf-8", "backslashreplace").decode("utf-8")
        body = body.encode("utf-8", "backslashreplace").decode("utf-8")
        self._refuse(request_id, body, "rejected", [{"field": "event", "message": reason}], None)

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
