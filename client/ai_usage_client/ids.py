"""Request ids and timestamps, made on the game's thread for every event: cheap ones."""

from __future__ import annotations

import os
from datetime import UTC, datetime


def new_request_id() -> str:
    # 128 random bits as 32 hex digits, like uuid4().hex (which costs 3x as much, building a UUID object).
    # From os.urandom, never the random module: forked workers would share its state, and so their ids.
    return os.urandom(16).hex()


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
