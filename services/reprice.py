"""What stored events would cost under another price book, beside what they did cost. Nothing stored changes.

Each event is priced again exactly as it was logged (``services.usage_events.EventPricer``): the model id and
provider as stored, the price in force at the event's own timestamp, its service tier, every usage kind. "Before"
is what the row stores (``cost_nano``, ``cost_nano_by_kind``, ``price_version``), never a recomputation, so the
report shows what the ledger did charge. Money stays in integer nano-USD; exact USD is derived for display.

Pure: events and a book in, a :class:`RepriceReport` out. The service only chooses the events and loads the book.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from pydantic import BaseModel, Field, computed_field

from models.ai_usage import AIUsageLog, ExactUSD, FieldError
from models.usage_kinds import KIND_NAMES
from services.errors import ValidationFailed
from services.pricing import COST_PARTS, PriceBook, TokenCounts, cost_nano_by_kind, nano_to_usd, price_version
from services.store.protocol import EventFilter

UNSPLIT = "unsplit"
# A row logged before price versions were stored says nothing about which version priced it.
UNRECORDED_VERSION = "(not recorded)"


class CostChange(BaseModel):
    """One slice's cost as stored and under the other book, in nano-USD, with exact USD beside."""

    cost_nano_before: int = Field(description="What the ledger stored, nano-USD")
    cost_nano_after: int = Field(description="What the same events cost under the other book, nano-USD")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def change_nano(self) -> int:
        return self.cost_nano_after - self.cost_nano_before

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cost_before(self) -> ExactUSD:
        return nano_to_usd(self.cost_nano_before)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cost_after(self) -> ExactUSD:
        return nano_to_usd(self.cost_nano_after)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def change(self) -> ExactUSD:
        return nano_to_usd(self.change_nano)


class ModelReprice(CostChange):
    """One model id, exactly as logged."""

    events: int
    repriced_events: int = Field(description="Events whose cost differs under the other book")
    price_versions_before: list[str] = Field(description="The price versions the rows store, sorted")
    price_versions_after: list[str] = Field(description="The versions of the other book that priced them, sorted")


class RepriceReport(CostChange):
    """Every event's cost before and after, in total, by model (as logged) and by cost part (``COST_PARTS``)."""

    events: int
    repriced_events: int = Field(description="Events whose cost differs under the other book")
    by_model: dict[str, ModelReprice] = Field(description="By model id as logged, sorted by id")
    by_part: dict[str, CostChange] = Field(
        description="By usage kind, per_request and unsplit (the cost of rows logged before costs were split), in "
        "table order; parts that cost nothing either way are left out. Adds up to the totals"
    )


def window(start: datetime | date, end: datetime | date, user_id: str | None = None) -> EventFilter:
    """The events from ``start`` (inclusive) to ``end`` (exclusive); a bare date is 00:00 UTC that day.

    Raises ``ValidationFailed`` naming ``start``/``end`` for a naive datetime or an empty window.
    """
    errors = []
    bounds: dict[str, datetime] = {}
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, datetime):
            value = datetime.combine(value, time(0), tzinfo=UTC)
        if value.tzinfo is None or value.utcoffset() is None:
            errors.append(FieldError(field=name, message="must have a timezone (days are UTC days)"))
        else:
            bounds[name] = value.astimezone(UTC)
    if not errors and bounds["end"] <= bounds["start"]:
        errors.append(FieldError(field="end", message="must be after start (end is exclusive)"))
    if errors:
        raise ValidationFailed(errors)
    return EventFilter(user_id=user_id, start=bounds["start"], end=bounds["end"])


def of_tenant(events: Iterable[AIUsageLog], tenant_id: str | None) -> Iterator[AIUsageLog]:
    """Only ``tenant_id``'s events ("": the default tenant's, stored as None); every event when it is None. (The
    store filters by user and time, not tenant.)"""
    if tenant_id is None:
        return iter(events)
    wanted = tenant_id or None
    return (log for log in events if log.tenant_id == wanted)


@dataclass
class _Tally:
    events: int = 0
    repriced: int = 0
    before: int = 0
    after: int = 0
    versions_before: set[str] = field(default_factory=set)
    versions_after: set[str] = field(default_factory=set)


def stored_parts(log: AIUsageLog) -> dict[str, int]:
    """The row's cost by part; whatever its parts do not cover (a row logged before the split) is ``unsplit``."""
    # getattr: rows from before the split field existed have none at all.
    parts = dict(getattr(log, "cost_nano_by_kind", None) or {})
    rest = log.cost_nano - sum(parts.values())
    if rest:
        parts[UNSPLIT] = parts.get(UNSPLIT, 0) + rest
    return parts


def reprice(events: Iterable[AIUsageLog], book: PriceBook) -> RepriceReport:
    """What ``events`` cost as stored and what they would cost priced by ``book``; exact integer nano-USD."""
    total = _Tally()
    models: dict[str, _Tally] = {}
    parts_before = dict.fromkeys(COST_PARTS, 0)
    parts_after = dict.fromkeys(COST_PARTS, 0)
    for log in events:
        match = book.lookup(log.model, at=log.timestamp, provider=log.provider)
        counts = TokenCounts(**{name: getattr(log, name) for name in KIND_NAMES})
        after, after_parts = cost_nano_by_kind(match.entry, counts, log.service_tier)
        changed = after != log.cost_nano
        tally = models.setdefault(log.model, _Tally())
        for t in (total, tally):
            t.events += 1
            t.repriced += changed
            t.before += log.cost_nano
            t.after += after
        tally.versions_before.add(log.price_version or UNRECORDED_VERSION)
        tally.versions_after.add(price_version(match.entry))
        for part, nano in stored_parts(log).items():
            parts_before[part] = parts_before.get(part, 0) + nano
        for part, nano in after_parts.items():
            parts_after[part] += nano
    by_model = {
        model: ModelReprice(
            events=t.events,
            repriced_events=t.repriced,
            cost_nano_before=t.before,
            cost_nano_after=t.after,
            price_versions_before=sorted(t.versions_before),
            price_versions_after=sorted(t.versions_after),
        )
        for model, t in sorted(models.items())
    }
    by_part = {
        part: CostChange(cost_nano_before=parts_before[part], cost_nano_after=parts_after.get(part, 0))
        for part in parts_before
        if parts_before[part] or parts_after.get(part, 0)
    }
    return RepriceReport(
        events=total.events,
        repriced_events=total.repriced,
        cost_nano_before=total.before,
        cost_nano_after=total.after,
        by_model=by_model,
        by_part=by_part,
    )
