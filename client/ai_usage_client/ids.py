"""Request ids and timestamps, made on the game's thread for every event: cheap ones."""

from __future__ import annotations

import itertools
import os
import time
from datetime import UTC, datetime

# The last two hex digits of a request id, and the milliseconds of a timestamp, looked up, not formatted: the game's
# thread calls these after waiting on its provider, its caches cold, and int formatting then cost it ~4 µs a call.
_LOW = tuple(f"{low:02x}" for low in range(256))
_MILLIS = tuple(f".{millis:03d}+00:00" for millis in range(1000))


class _Ids:
    """Request ids: 64 random bits per process (from os.urandom, drawn again in a forked child) and a counter.

    Unique without a system call per id (``os.urandom`` took 1-12 µs a call on this machine, ``uuid4`` more):
    two processes share a prefix with odds of 1 in 2^64, and a process never repeats its counter. Never the
    ``random`` module: forked workers would share its state, and so their ids. 32 hex digits, like uuid4().hex:
    the prefix, the counter's high 14 digits (formatted once per 256 ids) and its low two.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count()  # next() on it is atomic under the GIL: no lock between threads
        self.block: tuple[int, str] = (-1, "")  # (counter >> 8, its id prefix): one tuple, a matching pair

    def next(self) -> str:
        number = next(self.counter)
        high = number >> 8
        cached, head = self.block
        if high != cached:
            head = f"{self.prefix}{high:014x}"
            self.block = (high, head)
        return head + _LOW[number & 0xFF]


_ids = _Ids()
os.register_at_fork(after_in_child=_ids.reset)


def new_request_id() -> str:
    return _ids.next()


_second: tuple[int, str] = (-1, "")  # the last whole second formatted; one tuple, so threads see a matching pair


def now_utc() -> str:
    """Now, UTC, ISO 8601 to the millisecond (what the ledger keeps), e.g. ``2026-11-24T20:04:37.040+00:00``.

    The date and time of the second are formatted once per second; a call adds only the milliseconds, from a
    table, a tenth of ``datetime.now(UTC).isoformat()``'s cost. Integer nanoseconds: no float to round, and
    no ``int()`` calls, which cost a call made with cold caches more than the arithmetic.
    """
    global _second
    millis = time.time_ns() // 1_000_000
    second = millis // 1000
    cached, prefix = _second
    if second != cached:
        prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second = (second, prefix)
    return prefix + _MILLIS[millis - second * 1000]
