"""Shared value rules: the double's clock, Appwrite ids and datetime normalisation."""

from __future__ import annotations

import os
import re
import threading
import time
from datetime import UTC, datetime

from .errors import argument_invalid

# appwrite-facts §3.4 IDs [U Validator/Key.php]: ≤36 chars of [A-Za-z0-9._-], first char not _ . -
_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,35}")
KEY_RULE = (
    "Parameter must contain at most 36 chars. Valid chars are a-z, A-Z, 0-9, period, hyphen, "
    "and underscore. Can't start with a special char"
)
UNIQUE = "unique()"

# appwrite-facts §3.4 datetime: MariaDB bounds 1000-01-01 .. 9999-12-31.
_MIN_YEAR, _MAX_YEAR = 1000, 9999


class Clock:
    """Wall clock with an offset tests can move forward (transaction expiry, column readiness)."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return time.time() + self._offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def now_iso(self) -> str:
        return format_datetime(self.now())

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds


def is_key(value: object) -> bool:
    return isinstance(value, str) and _KEY_RE.fullmatch(value) is not None


def unique_id(clock: Clock) -> str:
    # appwrite-facts §3.4: "unique()" is replaced server-side by a 20-hex id
    # (13-char uniqid timestamp + 7 random) [P27 id.py].
    ts = clock.time()
    seconds = int(ts)
    micros = int((ts - seconds) * 1_000_000)
    return f"{seconds:08x}{micros:05x}{os.urandom(4).hex()[:7]}"


def resolve_id(value: object, param: str, clock: Clock) -> str:
    """Validate a client-chosen id param, replacing the literal "unique()"."""
    if value == UNIQUE:
        return unique_id(clock)
    if not is_key(value):
        raise argument_invalid(param, KEY_RULE)
    return value  # type: ignore[return-value]


def format_datetime(moment: datetime) -> str:
    # appwrite-facts §3.4: returned as YYYY-MM-DDTHH:MM:SS.mmm+00:00 [S Response/Model.php:15].
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}+00:00"


def format_timestamp(ts: float) -> str:
    return format_datetime(datetime.fromtimestamp(ts, UTC))


def normalize_datetime(value: object) -> str | None:
    """Canonical UTC millisecond string, or None when the value is not an acceptable datetime."""
    if not isinstance(value, str) or not re.match(r"\s*\d{4}", value):
        return None  # appwrite-facts §3.4: the string must contain a 4-digit year.
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # appwrite-facts §3.4: a naive string is UTC.
    try:
        utc = moment.astimezone(UTC)  # appwrite-facts §3.4: offsets are converted to UTC.
    except OverflowError:
        return None
    if not _MIN_YEAR <= utc.year <= _MAX_YEAR:
        return None
    # appwrite-facts §3.4: DATETIME(3) keeps milliseconds; microseconds are truncated.
    return format_datetime(utc.replace(microsecond=utc.microsecond - utc.microsecond % 1000))
