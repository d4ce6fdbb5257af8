"""The client's counters, shared by the game's threads and the sender thread."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ClientStats:
    """What the client did with the events it was given, since it was built.

    ``queued``: events ``record``/``log`` accepted. ``sent``: events the ledger acknowledged (stored, or a
    ``duplicate`` of one stored before), replays included. ``duplicates``: of those, the duplicates.
    ``spooled``: events written to the spool (ledger unreachable, 5xx/429, queue full, closing).
    ``replayed``: spooled events the ledger later acknowledged. ``rejected``: events the ledger refused
    (invalid, or a ``conflict``), now in the dead-letter table. ``dropped``: events lost because the spool
    itself could not be written (each logged as an error); 0 otherwise.
    """

    queued: int = 0
    sent: int = 0
    duplicates: int = 0
    spooled: int = 0
    replayed: int = 0
    rejected: int = 0
    dropped: int = 0


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(ClientStats.__dataclass_fields__, 0)
        # ``queued`` is counted on the game's thread for every event, so without a lock: next() on a count is
        # atomic under the GIL, where a locked += cost ~5 µs with cold caches. A snapshot reads it by taking one
        # more number, so the numbers snapshots took are subtracted.
        self._queued = itertools.count()
        self._queued_reads = 0
        self.one_queued: Callable[[], int] = self._queued.__next__

    def add(self, **amounts: int) -> None:
        # += on a shared int is not atomic across threads; one uncontended lock costs well under a microsecond.
        with self._lock:
            for name, amount in amounts.items():
                self._values[name] += amount

    def snapshot(self) -> ClientStats:
        with self._lock:
            queued = next(self._queued) - self._queued_reads
            self._queued_reads += 1
            return ClientStats(**{**self._values, "queued": queued})
