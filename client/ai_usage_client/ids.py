"""Request ids and timestamps, made on the game's thread for every event: cheap ones."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime


def new_request_id() -> str:
    # 128 random bits as 32 hex digits, like uuid4().hex (which costs 3x as much, building a UUID object).
    # From os.urandom, never the random module: forked workers would share its state, and so their ids.
    return os.urandom(16).hex()


_second: tuple[int, str] = (-1, "")  # the last whole second formatted; one tuple, so threads see a matching pair


def now_utc() -> str:
    """Now, UTC, ISO 8601 to the millisecond (what the ledger keeps), e.g. ``2026-11-24T20:04:37.040+00:00``.

    The date and time of the second are formatted once per second; a call adds only the milliseconds, a quarter
    of ``datetime.now(UTC).isoformat()``'s cost.
    """
    global _second
    now = time.time()
    second = int(now)
    cached, prefix = _second
    if second != cached:
        prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second = (second, prefix)
    return f"{prefix}.{int((now - second) * 1000):03d}+00:00"
