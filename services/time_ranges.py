"""The ranges and limits the summaries and analytics accept: UTC days and instants, checked with field-named
errors (a naive datetime is refused: UTC everywhere)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from models.ai_usage import FieldError
from models.analytics import Interval
from services.errors import ValidationFailed

MAX_RANGE_DAYS = 366
MAX_HOURS = 31 * 24
MAX_MONTHS = 120
MAX_TOP = 1000


# No event predates 1970 (usage_events refuses it), and a range steps a bucket or a week past its ends: days outside
# these are a caller's mistake, refused by name rather than overflowing the calendar.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9998, 12, 31)
OUTSIDE_DAYS = f"must be from {FIRST_DAY} to {LAST_DAY}"


def invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldError(field=field, message=message)])


def outside_days(day: date) -> str | None:
    """Why ``day`` cannot bound a range, or None when it can."""
    return None if FIRST_DAY <= day <= LAST_DAY else OUTSIDE_DAYS


def as_day(value: date | datetime, field: str) -> date:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise invalid(field, "a datetime must be timezone-aware (or pass a date)")
        day = value.astimezone(UTC).date()
    elif isinstance(value, date):
        day = value
    else:
        raise invalid(field, f"must be a date, got {type(value).__name__}")
    if (why := outside_days(day)) is not None:
        raise invalid(field, why)
    return day


def as_instant(value: date | datetime, field: str) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise invalid(field, "must be timezone-aware (UTC everywhere)")
        try:
            instant = value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+01:00 has no UTC date
            raise invalid(field, OUTSIDE_DAYS) from None
    elif isinstance(value, date):
        instant = datetime.combine(value, time(), UTC)
    else:
        raise invalid(field, f"must be a date-time, got {type(value).__name__}")
    if (why := outside_days(instant.date())) is not None:
        raise invalid(field, why)
    return instant


def day_range(start: date | datetime, end: date | datetime) -> tuple[date, date]:
    """Both UTC days included; a range covers at most ``MAX_RANGE_DAYS``."""
    first, last = as_day(start, "start"), as_day(end, "end")
    if last < first:
        raise invalid("end", "must not be before start")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise invalid("end", f"a range covers at most {MAX_RANGE_DAYS} days")
    return first, last


def check_limit(limit: int) -> None:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_TOP:
        raise invalid("limit", f"must be an integer from 1 to {MAX_TOP}")


def bucket_starts(begin: datetime, stop: datetime, interval: Interval) -> list[datetime]:
    """The first instant of every bucket from the one holding ``begin`` to the last one before ``stop``."""
    if interval is Interval.HOUR:
        at, step, most = begin.replace(minute=0, second=0, microsecond=0), timedelta(hours=1), MAX_HOURS
    elif interval is Interval.DAY:
        at, step, most = begin.replace(hour=0, minute=0, second=0, microsecond=0), timedelta(days=1), MAX_RANGE_DAYS
    else:
        at, step, most = begin.replace(day=1, hour=0, minute=0, second=0, microsecond=0), None, MAX_MONTHS
    starts: list[datetime] = []
    while at < stop:
        starts.append(at)
        if len(starts) > most:
            raise invalid("end", f"a {interval.value} series has at most {most} buckets")
        at = at + step if step else _next_month(at)
    return starts


def _next_month(at: datetime) -> datetime:
    return at.replace(year=at.year + 1, month=1) if at.month == 12 else at.replace(month=at.month + 1)
