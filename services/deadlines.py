"""A deadline for everything one caller does inside a ``with`` block, obeyed by every store.

The rate limiter's count must answer in milliseconds whatever the store is doing, while the same store call made
elsewhere may take the whole retry budget. The caller states the limit once, ``with deadline(0.25): ...``, and
each store consults ``remaining()`` before and during its work: the Appwrite store caps every retry budget and
every request at it, the SQLite store its lock waits. When the time is up the store raises ``StoreError``.

The deadline lives in a ``ContextVar``: each thread (and each asyncio task) has its own, so server threads
sharing one store never see each other's deadline, and leaving the block restores the outer one even on an
exception. Nested blocks keep the tighter deadline: an inner block can shorten the time left, never extend it.
Times are ``time.monotonic()`` seconds, immune to wall-clock changes. This module imports no store.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from services.errors import StoreError

_DEADLINE: ContextVar[float | None] = ContextVar("ai_usage_deadline", default=None)


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Everything inside must finish within ``seconds`` from now (or sooner, if an outer deadline says so)."""
    if not (isinstance(seconds, int | float) and not isinstance(seconds, bool)) or math.isnan(seconds) or seconds < 0:
        raise ValueError(f"deadline seconds must be a number ≥ 0, not {seconds!r}")
    at = time.monotonic() + seconds
    outer = _DEADLINE.get()
    token = _DEADLINE.set(at if outer is None else min(outer, at))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def remaining() -> float | None:
    """Seconds left before the current deadline (0.0 once it passed), or None outside any ``deadline`` block."""
    at = _DEADLINE.get()
    return None if at is None else max(0.0, at - time.monotonic())


def within(seconds: float) -> float:
    """``seconds`` capped at the time left: the longest a wait or a request may take now."""
    left = remaining()
    return seconds if left is None else min(seconds, left)


def check(what: str) -> None:
    """Raise ``StoreError`` if the current deadline has passed (``what`` names the operation it stopped)."""
    if remaining() == 0.0:
        raise StoreError(f"{what} did not finish within the caller's deadline", retry_after=1.0)
