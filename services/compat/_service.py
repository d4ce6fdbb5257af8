"""What every facade shares: the ledger it writes to, the system user, and the conversions at its edge.

The facades keep the call shapes of the services this ledger replaces; the ledger under them is a
``UsageTrackingService``. Each takes one explicitly; otherwise they share a default, built from settings (the
``AI_USAGE_*`` / ``APPWRITE_*`` environment) the first time one is needed, as the replaced services read theirs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime

from models.ai_usage import FieldError
from services.errors import ValidationFailed
from services.usage_tracking_service import UsageTrackingService

# The user a call is logged under when its caller names none: the replaced tenant trackers (AIUsageTracker) and
# the unified UsageTracker (without user_id) counted calls per tenant or per provider, not per player.
SYSTEM_USER = "system"

_lock = threading.Lock()
_default: UsageTrackingService | None = None


def default_service() -> UsageTrackingService:
    """The ledger the facades use when given none: ``UsageTrackingService()``, built once, on first use."""
    global _default
    with _lock:  # two threads' first calls must not open two stores
        if _default is None:
            _default = UsageTrackingService()
        return _default


def set_default_service(service: UsageTrackingService | None) -> None:
    """Make ``service`` the facades' default (an application that builds its own ledger); None builds it again
    from settings on next use. The previous default is not closed: its owner closes it."""
    global _default
    with _lock:
        _default = service


def resolve(service: UsageTrackingService | None) -> UsageTrackingService:
    return service if service is not None else default_service()


def as_utc(value: datetime | date) -> datetime | date:
    """A naive datetime read as UTC: the replaced services wrote ``datetime.utcnow()`` (naive UTC), which the
    ledger, refusing naive times everywhere else, would otherwise reject. Dates and aware datetimes pass."""
    if isinstance(value, datetime) and (value.tzinfo is None or value.utcoffset() is None):
        return value.replace(tzinfo=UTC)
    return value


def utc_day(value: datetime | date) -> date:
    """The UTC day of a date or datetime (naive read as UTC): the ledger's ranges are whole UTC days."""
    if isinstance(value, datetime):
        return as_utc(value).astimezone(UTC).date()  # type: ignore[union-attr]
    return value


def enum_value(value: object) -> object:
    """An enum member's value (``ProviderType.OPENAI`` -> ``"openai"``); anything else unchanged."""
    return getattr(value, "value", value)


@contextmanager
def caller_names(names: Mapping[str, str]) -> Iterator[None]:
    """Report bad input by the caller's argument names (``latency_ms``, not ``request_duration_ms``)."""
    try:
        yield
    except ValidationFailed as exc:
        renamed = [FieldError(field=names.get(e.field, e.field), message=e.message) for e in exc.fields]
        raise ValidationFailed(renamed) from exc
