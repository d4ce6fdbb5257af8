"""From what a caller sends to what is stored: validation with field-named errors, identity and price."""

from __future__ import annotations

import uuid
from bisect import bisect_right
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

from pydantic import ValidationError

from models.ai_usage import (
    AIUsageLog,
    FieldError,
    UsageEvent,
    derived_fields,
    log_id_for,
    platform_credits_of,
)
from models.usage_kinds import KIND_NAMES
from services.errors import ValidationFailed
from services.pricing import EntryPricer, PriceBook, PriceMatch, entry_pricer

# Appwrite datetimes start at year 1000 and nothing real predates this; older means a unit mistake.
EARLIEST_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)


def field_errors(exc: ValidationError) -> list[FieldError]:
    """Pydantic's errors as (field, message) pairs a caller can act on."""
    errors = []
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        # Inside metadata the location is the caller's own keys (any text, even broken): name the field only.
        field = "metadata" if loc[:1] == ("metadata",) else ".".join(str(part) for part in loc) or "__root__"
        message = error["msg"]
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        if error["type"] == "enum":
            message = f"must be one of {error['ctx']['expected']}"
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        if field == "__root__" and "tokens_" in message:
            field = message.split(" ", 1)[0]
        errors.append(FieldError(field=field, message=message))
    return errors


def parse_event(data: UsageEvent | Mapping[str, Any]) -> UsageEvent:
    """Validate raw input into a ``UsageEvent``; ``ValidationFailed`` names every bad field."""
    if isinstance(data, UsageEvent):
        return data
    if not isinstance(data, Mapping):
        raise ValidationFailed([FieldError(field="__root__", message="an event must be a JSON object")])
    try:
        return UsageEvent.model_validate(dict(data))
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc)) from None


# What a replay must repeat to be a duplicate: everything it bills. ``provider`` and ``timestamp`` count only
# when the caller sent them (otherwise they were inferred or stamped on arrival, and a retry cannot repeat them).
BILLED_FIELDS = ("user_id", "tenant_id", "model", "task_type", *KIND_NAMES, "service_tier", "success", "session_id")
_kind_values = attrgetter(*KIND_NAMES)


def differing_fields(event: UsageEvent, built: AIUsageLog, stored: AIUsageLog) -> list[FieldError]:
    """The billed fields where a replayed event differs from the stored one (names only, never the values)."""
    names = [name for name in BILLED_FIELDS if getattr(built, name) != getattr(stored, name)]
    if event.provider is not None and built.provider != stored.provider:
        names.append("provider")
    if event.timestamp is not None and built.timestamp != stored.timestamp:
        names.append("timestamp")
    return [
        FieldError(field=name, message="differs from the event already logged with this request_id") for name in names
    ]


# The widths every store keeps (Appwrite's columns, appwrite.json): what pricing derives from a model id (a provider
# read off its prefix, a normalised or case-folded id, a dated version) can run longer than the id, and one such
# value failed a whole Appwrite batch while SQLite stored it. Cut here, so every store stores the same row.
PROVIDER_CHARS, PRICE_MODEL_ID_CHARS, PRICE_VERSION_CHARS = 64, 200, 256

# EventPricer.price's answer: a plain tuple, since every logged event builds one.
Priced = tuple[PriceMatch, str | None, EntryPricer, int, dict[str, int]]
_Choice = tuple[PriceMatch, str | None, EntryPricer]
_PRICED_CACHE_SIZE = 10_000  # distinct (model, provider, tier) seen; past it, priced without the cache


class EventPricer:
    """Builds the stored ``AIUsageLog`` for an event: fills the defaults, checks the clock, prices it."""

    def __init__(self, price_book: PriceBook, clock, max_future_skew: timedelta) -> None:  # type: ignore[no-untyped-def]
        self.price_book = price_book
        self.clock = clock
        self.max_future_skew = max_future_skew
        # Per (model, provider, tier): when each price version starts, and for each what the row takes from it.
        self._priced: dict[tuple[str, str | None, str], tuple[list[datetime], list[_Choice]]] = {}

    def price(self, event: UsageEvent, timestamp: datetime) -> Priced:
        """What pricing puts on the row: the price that applied, who served the model, the pricer of that price
        and tier (the tier that applied, the price version), the cost in nano-USD and its split by kind.
        ``benchmarks/pricing_bench.py`` times this, for issue 9's figure."""
        key = (event.model, event.provider, event.service_tier)
        starts, choices = self._priced.get(key) or self._choices(key)
        match, provider, pricer = choices[0] if len(choices) == 1 else choices[bisect_right(starts, timestamp) - 1]
        # UsageEvent's validators checked the counts (strict whole numbers in bounds, parts within their wholes),
        # so they are priced as the event holds them (its fields, by name), one request, not copied nor checked.
        nano, nano_by_kind = pricer.cost_nano_by_kind(event.__dict__)
        return match, provider, pricer, nano, nano_by_kind

    def _choices(self, key: tuple[str, str | None, str]) -> tuple[list[datetime], list[_Choice]]:
        """Resolved once per (model, provider, tier), as the book resolves names once: each version's match, the
        provider the row names (the event's, else the one the id implies, else the entry's) and its pricer."""
        model, given, tier = key
        book = self.price_book
        starts, matches = book.versions(model, given)
        inferred = given or book.infer_provider(model)
        if inferred is not None and len(inferred) > PROVIDER_CHARS:  # a long prefix, not a provider anyone names
            inferred = None
        choices = [
            (
                match,
                inferred if inferred is not None or match.is_fallback else match.entry.provider,
                entry_pricer(match.entry, tier),
            )
            for match in matches
        ]
        if len(self._priced) < _PRICED_CACHE_SIZE:
            self._priced[key] = (starts, choices)
        return starts, choices

    def build(self, event: UsageEvent) -> AIUsageLog:
        # In UTC whatever the clock's zone: the rollups bucket events by the timestamp's own date and hour.
        now = self.clock().astimezone(UTC)
        timestamp = event.timestamp or now
        if timestamp > now + self.max_future_skew:
            raise ValidationFailed(
                [
                    FieldError(
                        field="timestamp",
                        message=f"must not be more than {self.max_future_skew} in the future",
                    )
                ]
            )
        if timestamp < EARLIEST_TIMESTAMP:
            raise ValidationFailed([FieldError(field="timestamp", message="must not be before 1970-01-01")])
        # Milliseconds are what Appwrite keeps; truncating here makes every store return the same value.
        timestamp = timestamp.replace(microsecond=timestamp.microsecond // 1000 * 1000)
        match, provider, pricer, nano, nano_by_kind = self.price(event, timestamp)
        usage = dict(zip(KIND_NAMES, _kind_values(event), strict=True))
        request_id = event.request_id or uuid.uuid4().hex
        return AIUsageLog(
            log_id=log_id_for(request_id, event.tenant_id),
            request_id=request_id,
            user_id=event.user_id,
            tenant_id=event.tenant_id,
            model=event.model,
            provider=provider,
            task_type=event.task_type,
            feature=event.feature,
            **usage,
            **derived_fields(nano, event.tokens_input, event.tokens_output),
            service_tier=event.service_tier,
            session_id=event.session_id,
            character_id=event.character_id,
            request_duration_ms=event.request_duration_ms,
            success=event.success,
            error_message=event.error_message,
            metadata=event.metadata,
            timestamp=timestamp,
            cost_nano=nano,
            cost_nano_by_kind=nano_by_kind,
            price_model_id=match.entry.model_id[:PRICE_MODEL_ID_CHARS],
            price_is_fallback=match.is_fallback,
            price_rule=match.rule,
            price_tier=pricer.tier,
            price_version=None if pricer.version is None else pricer.version[:PRICE_VERSION_CHARS],
            platform_credits=platform_credits_of(nano),
        )
